//go:build !race

package harden_test

const raceEnabled = false
