//go:build race

package main

// raceEnabled: this test binary, which the tests run as sstar, is built
// with the race detector, whose shadow memory is many times the
// program's own and counts against RLIMIT_DATA.
const raceEnabled = true
