package audit

//go:generate sh -c "cd .. && go run ./cmd/sstar events --markdown > docs/events.md"
