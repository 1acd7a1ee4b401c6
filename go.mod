module github.com/sstar-project/sstar

go 1.26.8

require (
	github.com/RackSec/srslog v0.0.0-20180709174129-a4725f04ec91
	github.com/landlock-lsm/go-landlock v0.11.2
	github.com/pkg/xattr v0.4.12
	github.com/rogpeppe/go-internal v1.16.0
	go.starlark.net v0.0.0-20260908191801-89a6a09411d5
	golang.org/x/mod v0.42.0
	golang.org/x/net v0.62.0
	golang.org/x/perf v0.0.0-20260908200009-22c9c6c9d4da
	golang.org/x/sys v0.49.0
)

require (
	github.com/aclements/go-moremath v0.0.0-20210112150236-f10218a38794 // indirect
	golang.org/x/tools v0.51.0 // indirect
	kernel.org/pub/linux/libs/security/libcap/psx v1.2.78 // indirect
)
