// Command sstar-sinks is sstar's sink process: sstar starts it, only when
// a run has a sink that needs the network stack (syslog), and sends it
// the run's records over a socket pair, each acknowledged before the
// event's action happens. It is not run by hand. See internal/sinkproc.
package main

import "github.com/sstar-project/sstar/internal/netsinks"

func main() { netsinks.Main() }
