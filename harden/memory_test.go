package harden_test

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/sstar-project/sstar/harden"
)

// A process started under RLIMIT_DATA of 160 MiB still makes
// go.starlark.net's 4 GiB read-only reservation (for small ints) and
// works: the reservation is not a private writable mapping, so it does
// not count against the limit. The test runs itself again, as a child
// whose limit is set before it starts (as sstar's children get theirs).
func TestLimitMemoryReservation(t *testing.T) {
	if os.Getenv("HARDEN_TEST_RESERVATION") == "1" {
		reservationChild(t)
		return
	}
	if raceEnabled {
		t.Skip("needs a build without the race detector (its shadow memory counts against RLIMIT_DATA)")
	}
	cmd := exec.Command("/bin/sh", "-c", `ulimit -d 163840 && exec "$0" -test.run=TestLimitMemoryReservation -test.v`, os.Args[0])
	cmd.Env = append(os.Environ(), "HARDEN_TEST_RESERVATION=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "reservation: ok") {
		t.Fatalf("child under RLIMIT_DATA 160 MiB: %v\n%s", err, out)
	}
	t.Logf("%s", grep(string(out), "reservation:"))
}

func grep(s, word string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, word) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

func reservationChild(t *testing.T) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	found := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		lo, hi, _ := strings.Cut(fields[0], "-")
		a, _ := strconv.ParseUint(lo, 16, 64)
		b, _ := strconv.ParseUint(hi, 16, 64)
		if b-a >= 1<<32 && strings.HasPrefix(fields[1], "r--p") {
			found = sc.Text()
		}
	}
	if found == "" {
		t.Fatal("no 4 GiB read-only mapping: go.starlark.net's reservation failed under the limit")
	}
	// Small ints come from the reservation; a computation works.
	v, err := starlark.EvalOptions(&syntax.FileOptions{}, &starlark.Thread{}, "x", "len([i * i for i in range(10000)])", nil)
	if err != nil || v.String() != "10000" {
		t.Fatalf("eval under the limit: %v, %v", v, err)
	}
	status, _ := os.ReadFile("/proc/self/status")
	t.Logf("reservation: ok: %s; %s", found, grep(string(status), "VmData"))
}

// LimitMemory lowers RLIMIT_DATA for this process and its children and
// never raises it.
func TestLimitMemory(t *testing.T) {
	if os.Getenv("HARDEN_TEST_LIMIT") == "1" {
		if err := harden.LimitMemory(512 << 20); err != nil {
			t.Fatal(err)
		}
		if err := harden.LimitMemory(1 << 30); err != nil { // above: keeps 512 MiB
			t.Fatal(err)
		}
		out, err := exec.Command("/bin/sh", "-c", "ulimit -d").Output()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("child limit: %s", strings.TrimSpace(string(out)))
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLimitMemory$", "-test.v")
	cmd.Env = append(os.Environ(), "HARDEN_TEST_LIMIT=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "child limit: 524288") {
		t.Fatalf("%v\n%s", err, out)
	}
}
