//go:build !cgo

package harden

// psxReadsTaskDir: see psx_cgo.go.
const psxReadsTaskDir = false
