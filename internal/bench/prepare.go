package bench

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/opencode"
)

// workloads writes the workloads, calibrates the compute script with
// the plain command, and stamps the code.
func (h *harness) workloads() error {
	p := &h.rep.Params
	p.ComputeRounds = 10
	if err := WriteWorkloads(h.wl, *p); err != nil {
		return err
	}
	target := computeTarget(h.cfg.Quick)
	for {
		c := h.cmd("plain", WantCompute, h.plain, ComputeScript)
		var best time.Duration
		for i := 0; i < 3; i++ {
			wall, _, _, err := RunOnce(c)
			if err != nil {
				return err
			}
			if best == 0 || wall < best {
				best = wall
			}
		}
		if best < target/5 {
			p.ComputeRounds *= 5
		} else {
			p.ComputeRounds = max(1, int(math.Round(float64(p.ComputeRounds)*float64(target)/float64(best))))
			if err := WriteCompute(h.wl, p.ComputeRounds); err != nil {
				return err
			}
			break
		}
		if err := WriteCompute(h.wl, p.ComputeRounds); err != nil {
			return err
		}
	}
	return h.stamp()
}

// stamp stamps every Starlark workload with the sstar under test
// (`sstar trust DIR`), checks each stamp with opencode's own
// verification, and checks that this sstar refuses unstamped code, so
// that the loading comparison measures verification.
func (h *harness) stamp() error {
	if _, _, _, err := RunOnce(Command{Name: "sstar trust", Argv: []string{h.sstar, "trust", h.wl}, Dir: h.wl, Env: h.env}); err != nil {
		return err
	}
	o, d := new(opencode.Opener), new(audit.Dispatcher)
	for _, name := range CodeFiles(h.rep.Params) {
		if _, err := o.Verify(d, filepath.Join(h.wl, name)); err != nil {
			return fmt.Errorf("sstar trust ran, but: %v", err)
		}
	}
	h.note("Every Starlark workload was stamped with `sstar trust` (%s).", opencode.DefaultXattrName)

	probe := filepath.Join(h.work, "probe")
	if err := os.MkdirAll(probe, 0o755); err != nil {
		return err
	}
	unstamped := filepath.Join(probe, "unstamped.star")
	if err := os.WriteFile(unstamped, []byte("print(\"probe ok\")\n"), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(h.sstar, unstamped)
	cmd.Dir, cmd.Env = probe, h.env
	var ee *exec.ExitError
	switch err := cmd.Run(); {
	case errors.As(err, &ee) && ee.ExitCode() == 126:
		h.note("This sstar refuses unstamped code (exit 126): verification is enforced.")
	case err == nil:
		return fmt.Errorf("this sstar ran unstamped code (%s): loading would not measure verification", unstamped)
	default:
		return fmt.Errorf("probing whether sstar runs unstamped code: %v", err)
	}
	return nil
}
