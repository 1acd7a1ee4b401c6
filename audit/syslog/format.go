package syslog

import (
	"strconv"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/record"
)

// AppendMessage appends r as the RFC 5424 message this sink sends (see
// the package documentation), without framing: PRI, header, structured
// data and MSG. hostname must already be a valid header field (see
// HeaderField). Other sinks that carry syslog messages, such as RELP's,
// use it so that a record reads the same whatever the transport.
func AppendMessage(b []byte, hostname string, r *record.Record) []byte {
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(Priority(r.Severity())), 10)
	b = append(b, ">1 "...)
	b = r.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	b = append(b, ' ')
	b = append(b, hostname...)
	b = append(b, ' ')
	b = append(b, appName...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(r.PID), 10)
	b = append(b, ' ')
	return appendContent(b, r)
}

// HeaderField makes s fit an RFC 5424 header field: printable ASCII, at
// most max bytes, "-" if empty.
func HeaderField(s string, max int) string { return headerField(s, max) }

// Priority is the PRI value of an event of severity sev: facility
// authpriv, and LOG_CRIT, LOG_ERR or LOG_INFO.
func Priority(sev audit.Severity) int { return int(priority(sev)) }
