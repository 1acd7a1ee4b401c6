package harden

//go:generate go test -run ^TestGeneratedFilter$ -update-filter .
