package policy

import (
	"context"

	"github.com/sstar-project/sstar/interp"
)

// RunAs runs the policy file at path as the system policy (system true)
// or an additive one, checked by s's opener, without the system policy's
// fixed path and root ownership: tests of what a policy file may decide.
var RunAs = func(ctx context.Context, h *interp.Host, path string, system bool, s *Settings) error {
	return run(ctx, h, s.Opener(), path, system, 0, s)
}

var MinimalPaths = minimalPaths
