package kaudittest

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// StartCentral runs an auditd that takes records from other hosts'
// audisp-remote, with AuditdConfig and the lines of block (a
// tcp_listen_port) added, as a fleet's central server does. It runs in a
// network namespace of its own, where only loopback exists, so that it
// listens on nothing else; and with local_events = no, since the kernel
// takes one audit daemon, which is StartForwarding's. It is stopped when
// the test ends.
func StartCentral(t testing.TB, block string) *Auditd {
	t.Helper()
	bin := needAuditd(t, "ip", "nsenter")
	m := regexp.MustCompile(`(?m)^tcp_listen_port\s*=\s*(\d+)\s*$`).FindStringSubmatch(block)
	if m == nil {
		t.Fatalf("the central auditd's configuration has no tcp_listen_port:\n%s", block)
	}
	port, _ := strconv.Atoi(m[1])
	a := newAuditd(t, func(dir string) string {
		conf := strings.Replace(AuditdConfig(dir), "local_events = yes\n", "local_events = no\n", 1)
		return conf + block
	})
	a.start(t, bin, []string{"unshare", "--net", "--"},
		`ip link set lo up && mount --bind "$1/run" /run && exec "$2" -n -s nochange -c "$1"`,
		func(a *Auditd) bool { return listening(a.d.Pid(), port) })
	return a
}

// listening says whether the process pid's network namespace has a TCP
// socket listening on port.
func listening(pid, port int) bool {
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st ...; 0A is LISTEN.
			fs := strings.Fields(l)
			if len(fs) > 3 && fs[3] == "0A" && strings.HasSuffix(fs[1], fmt.Sprintf(":%04X", port)) {
				return true
			}
		}
	}
	return false
}

// StartForwarding runs an auditd registered with the kernel, as
// StartAuditd does, whose audisp-remote plugin sends every record to
// central: plugin is its plugins.d/au-remote.conf, remote(dir) its
// /etc/audit/audisp-remote.conf (mounted there in its mount namespace),
// dir being its directory (for a queue_file).
// It runs in central's network namespace, where central's loopback
// address is its own. It is stopped when the test ends, before central.
func StartForwarding(t testing.TB, central *Auditd, plugin string, remote func(dir string) string) *Auditd {
	t.Helper()
	bin := needAuditd(t)
	if _, err := exec.LookPath("audisp-remote"); err != nil {
		t.Skip("needs audisp-remote (Debian package audispd-plugins; .ci/deps installs it)")
	}
	if _, err := os.Stat("/etc/audit/audisp-remote.conf"); err != nil {
		t.Skip("needs /etc/audit/audisp-remote.conf to mount the test's configuration on (Debian package audispd-plugins)")
	}
	a := newAuditd(t, AuditdConfig)
	if err := os.WriteFile(a.Dir+"/plugins.d/au-remote.conf", []byte(plugin), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a.Dir+"/audisp-remote.conf", []byte(remote(a.Dir)), 0o640); err != nil {
		t.Fatal(err)
	}
	a.start(t, bin, []string{"nsenter", fmt.Sprintf("--net=/proc/%d/ns/net", central.d.Pid()), "--"},
		`mount --bind "$1/run" /run && mount --bind "$1/audisp-remote.conf" /etc/audit/audisp-remote.conf && exec "$2" -n -s nochange -c "$1"`,
		registered)
	return a
}
