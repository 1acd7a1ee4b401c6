//go:build race

package harden_test

// raceEnabled: the race detector's shadow memory counts against
// RLIMIT_DATA, so memory limits mean something else in such a build.
const raceEnabled = true
