// Package netsinks is the sink process's program (cmd/sstar-sinks): the
// audit sinks that need the network stack (syslog, RELP, journald), served to sstar over the
// socket pair of package sinkproc. Only the sink process links it: sstar
// itself does not, so that a run without network sinks does not pay for
// the network and TLS stacks' initialisation.
package netsinks

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/sstar-project/sstar/audit/journald"
	"github.com/sstar-project/sstar/audit/record"
	"github.com/sstar-project/sstar/audit/relp"
	"github.com/sstar-project/sstar/audit/syslog"
	"github.com/sstar-project/sstar/internal/sinkproc"
	"github.com/sstar-project/sstar/policy"
)

// Open opens the sink spec (a policy.Sink as JSON) names.
func Open(spec []byte) (record.Sink, error) {
	var s policy.Sink
	if err := json.Unmarshal(spec, &s); err != nil {
		return nil, fmt.Errorf("a sink spec that does not parse: %v", err)
	}
	switch {
	case s.Kinds() != 1:
		return nil, fmt.Errorf("a sink names one destination (%+v)", s)
	case s.Syslog != "":
		return syslog.Dial(syslog.Options{Addr: s.Syslog, CAFile: s.SyslogCA, CertFile: s.SyslogCert, KeyFile: s.SyslogKey})
	case s.Relp != "":
		return relp.Dial(relp.Options{Addr: s.Relp, CAFile: s.SyslogCA, CertFile: s.SyslogCert, KeyFile: s.SyslogKey})
	case s.Journald:
		return journald.Dial(journald.Options{})
	}
	return nil, errors.New("the sink process opens network sinks only: syslog, RELP, journald")
}

// Main serves sstar on descriptor 3 and exits: 0 once sstar closed the
// connection and every sink closed cleanly, 1 otherwise (said on stderr).
func Main() {
	conn := os.NewFile(3, "sstar")
	if conn == nil {
		fmt.Fprintln(os.Stderr, "sstar-sinks: no descriptor 3; sstar starts this program itself, with its socket there")
		os.Exit(2)
	}
	if err := sinkproc.Serve(conn, Open); err != nil {
		fmt.Fprintf(os.Stderr, "sstar-sinks: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}
