package main

import (
	"fmt"
	"io"
)

// sinksHelp is `sstar sinks`: what each sink guarantees and how its
// receiver is set up. docs/sinks.md has the tested configurations whole.
const sinksHelp = `Audit sinks: every event is recorded in every sink before its action
happens. A sink that cannot take an event stops the run: exit 255, and
nothing of the script runs after that event. Give any number of sinks;
the system policy can make some mandatory (policy.sink).

--audit-log PATH (policy.sink(audit_log=PATH))
  JSON Lines, hash-chained; sstar log verify PATH checks it.
  Guarantee: the line was written (write(2) whole) before the action.
  A crash of the machine can lose lines not yet on disk (fsync is at the
  end of the run); a crash of sstar loses nothing written.

--syslog ADDR (policy.sink(syslog=ADDR))
  RFC 5424 to unix:///dev/log, udp://, tcp:// or tls:// HOST:PORT.
  Guarantee on tcp/tls: the message was handed to the kernel on a stream
  checked to be open. No acknowledgement: a server that dies holding
  unread data is noticed at the next event or at the end (exit 255),
  after that event's action. udp and datagram sockets confirm nothing.
  Receiver: rsyslog imtcp, global(maxMessageSize="64k").

--relp ADDR (policy.sink(relp=ADDR))
  RELP to tcp:// or tls:// HOST:PORT (rsyslog's imrelp).
  Guarantee: acknowledged. The action happens only after the server
  answered "rsp 200" for the event's record. No answer within 1 minute,
  a negative answer, a broken connection or serverclose: one reconnect
  and the record sent again, else exit 255. A record sent again may
  arrive twice, identical: receivers drop repeats of a (run, seq).
  A crash loses nothing acknowledged, except what the server itself
  keeps only in memory (give rsyslog a disk-assisted queue).
  Receiver: rsyslog with rsyslog-relp:
    module(load="imrelp")
    input(type="imrelp" port="2514" maxDataSize="128k" oversizeMode="abort")

--journald (policy.sink(journald=True))
  journald's native protocol on /run/systemd/journal/socket; fields
  MESSAGE, PRIORITY, SYSLOG_IDENTIFIER=sstar, SSTAR_EVENT, SSTAR_RUN,
  SSTAR_SEQ, SSTAR_TIME, SSTAR_ARGS; large entries through a sealed memfd.
  Guarantee: the entry is in journald's socket queue before the action,
  and at the end of the run journald has read every entry (else exit
  255). No acknowledgement per entry. journald's rate limit drops
  entries silently: run sstar with LogRateLimitIntervalSec=0 in its
  unit, or RateLimitIntervalSec=0 in journald.conf.
  Read: journalctl SYSLOG_IDENTIFIER=sstar -o json.

--kernel-audit (policy.sink(kernel_audit=True))
  The kernel's audit log: AUDIT_TRUSTED_APP records through NETLINK_AUDIT,
  fields op=sstar event run seq time args (hex JSON).
  Guarantee: acknowledged by the kernel before the action. Needs
  CAP_AUDIT_WRITE (else sstar refuses to start, exit 255) and auditing
  on (auditctl -e 1; sstar refuses to start when it can see it is off).
  Kept only if auditd (or journald's audit reader) runs; the audit rate
  limit, if set, drops records.
  Read: ausearch -m TRUSTED_APP -i.

For a fleet: rsyslog forwards with omrelp, journald with
systemd-journal-upload to systemd-journal-remote, auditd with audisp-remote
to a central auditd. See docs/sinks.md.
`

func cmdSinks(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "sstar: usage: sstar sinks")
		return exitUsage
	}
	fmt.Fprint(stdout, sinksHelp)
	return exitOK
}
