package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sstar-project/sstar/opencode"
	"github.com/sstar-project/sstar/policy"
)

const catalogUsage = `usage: sstar catalog sign --key NAME.key [--version N] [--expires DURATION] DIR
       sstar catalog verify [--key NAME.pub] DIR/sstar.catalog`

// auditModeWarning is the one line a run prints when the system policy
// is in audit mode.
const auditModeWarning = `sstar: warning: the system policy is in audit mode (policy.trust(mode="audit")): code that nothing vouches for is recorded (sstar.code_integrity_failure, enforced=False) and runs anyway`

// cmdCatalog is `sstar catalog sign` and `sstar catalog verify`.
func cmdCatalog(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "sign":
			return cmdCatalogSign(args[1:], stdout, stderr)
		case "verify":
			return cmdCatalogVerify(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "sstar catalog: %s\n", catalogUsage)
	return exitUsage
}

// cmdCatalogSign writes DIR/sstar.catalog: every *.star file under DIR
// with its SHA-256, signed with the signer key. When DIR already has a
// catalog with the same text (the same files, version and expiry), the
// new signature is added to those it has: threshold signing.
func cmdCatalogSign(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("sstar catalog sign", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	keyFile := flags.String("key", "", "")
	var version uint64
	var expires time.Duration
	flags.Func("version", "", func(s string) error {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			return fmt.Errorf("want a positive whole number, got %q", s)
		}
		version = n
		return nil
	})
	flags.Func("expires", "", func(s string) error {
		d, err := parseDays(s)
		if err != nil || d < time.Second {
			return fmt.Errorf("want a duration of at least a second such as 720h or 90d, got %q", s)
		}
		expires = d
		return nil
	})
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "sstar catalog sign: %s\n%s\n", fmt.Sprintf(format, a...), catalogUsage)
		return exitUsage
	}
	if err := flags.Parse(args); err != nil {
		return usage("%v", err)
	}
	if *keyFile == "" || flags.NArg() != 1 {
		return usage("want --key NAME.key and one DIR")
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "sstar catalog sign: %s\n", fmt.Sprintf(format, a...))
		return exitFailed
	}
	dir := flags.Arg(0)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return usage("%s is not a directory", dir)
	}
	skey, err := readSignerKey(*keyFile)
	if err != nil {
		return fail("%v", err)
	}

	// The hashes, of what a run will read: every file through opencode's
	// own open, with the largest code size a system policy may allow.
	reader := &opencode.Opener{MaxSize: policy.MaxCodeSizeLimit}
	var text opencode.CatalogText
	bad := false
	opencode.WalkCode(dir, func(p string) error {
		code, err := reader.Read(p)
		if err != nil {
			bad = true
			fmt.Fprintf(stderr, "sstar catalog sign: %v\n", err)
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			bad = true
			fmt.Fprintf(stderr, "sstar catalog sign: %s: %v\n", p, err)
			return nil
		}
		text.Files = append(text.Files, opencode.CatalogEntry{Path: filepath.ToSlash(rel), SHA256: code.SHA256})
		return nil
	})
	if bad {
		return fail("nothing signed")
	}

	catPath := filepath.Join(dir, opencode.CatalogName)
	// The existing catalog, read as a run reads one (a FIFO there must not
	// hang the signer).
	var prevData []byte
	if _, err := os.Lstat(catPath); err == nil {
		code, err := (&opencode.Opener{MaxSize: opencode.MaxCatalogSize}).Read(catPath)
		if err != nil {
			return fail("%v; remove it to sign anew", err)
		}
		prevData = code.Data
	} else if !errors.Is(err, os.ErrNotExist) {
		return fail("%v", err)
	}
	var prev *opencode.CatalogText
	var prevSigners []string
	if prevData != nil {
		prevText, signers, err := opencode.CatalogSignatures(prevData)
		if err == nil {
			prev, err = opencode.ParseCatalogText(prevText)
		}
		if err != nil {
			return fail("%s exists but is not a catalog (%v); remove it to sign anew", catPath, err)
		}
		prevSigners = signers
	}
	text.Version = version
	switch {
	case version == 0 && prev != nil:
		text.Version = prev.Version
	case version == 0:
		text.Version = 1
	}
	if expires > 0 {
		text.Expires = time.Now().Add(expires).UTC().Truncate(time.Second)
	} else if prev != nil && version == 0 {
		text.Expires = prev.Expires
	}
	formatted, err := text.Format()
	if err != nil {
		return fail("cannot list the files of %s: %v", dir, err)
	}
	keep := prevData
	if prev != nil {
		prevFormatted, _ := prev.Format()
		switch {
		case prevFormatted == formatted:
			// Same text: add this signature to the others.
		case text.Version < prev.Version:
			return fail("%s is version %d; refusing to write the lower version %d (hosts with a state directory would refuse it anyway); remove the file first if you mean to", catPath, prev.Version, text.Version)
		case text.Version == prev.Version:
			return fail("%s (version %d, signed by %s) lists other content, version or expiry than signing now would; a changed catalog needs a higher version: give --version %d", catPath, prev.Version, strings.Join(prevSigners, ", "), prev.Version+1)
		default:
			keep = nil // a new version starts without the old signatures
		}
	}
	signed, err := opencode.SignCatalog(formatted, skey, keep)
	if err != nil {
		return fail("%v", err)
	}
	if err := writeReplace(catPath, signed); err != nil {
		return fail("%v", err)
	}
	_, signers, _ := opencode.CatalogSignatures(signed)
	fmt.Fprintf(stdout, "%s: version %d, %d file%s, signed by %s\n", catPath, text.Version, len(text.Files), plural(len(text.Files)), strings.Join(signers, ", "))
	return exitOK
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// parseDays is time.ParseDuration, plus whole days ("90d").
func parseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.ParseUint(n, 10, 16)
		if err != nil {
			return 0, err
		}
		return time.Duration(d) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// readSignerKey reads a signer key file, which must be a regular file
// that only its owner can read, as ssh requires of private keys.
func readSignerKey(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return "", fmt.Errorf("signer key: %v", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("signer key: %v", err)
	}
	switch {
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("signer key %s is not a regular file", path)
	case fi.Mode().Perm()&0o077 != 0:
		return "", fmt.Errorf("signer key %s can be read or written by others (mode %04o); chmod 600 %s, and consider it leaked if others could read it", path, fi.Mode().Perm(), path)
	case fi.Size() > 4096:
		return "", fmt.Errorf("signer key %s is too large to be one", path)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return "", fmt.Errorf("signer key: %v", err)
	}
	return strings.TrimSuffix(string(data), "\n"), nil
}

// writeReplace writes data to path through a new file in the same
// directory, renamed over it (mode 0644).
func writeReplace(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".sstar.catalog.*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// cmdCatalogVerify checks a catalog as a run would (the rules of code
// files, the signatures with the system policy's keys or --key's, the
// expiry, the rollback state without recording anything), then every
// file it lists, and every *.star file it should list: one line per file,
// exit 0 only if all hold.
func cmdCatalogVerify(args []string, stdout, stderr io.Writer) (status int) {
	flags := flag.NewFlagSet("sstar catalog verify", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	pubFile := flags.String("key", "", "")
	if err := flags.Parse(args); err != nil || flags.NArg() != 1 {
		fmt.Fprintf(stderr, "sstar catalog verify: want one catalog file; %s\n", catalogUsage)
		return exitUsage
	}
	catPath := flags.Arg(0)
	if fi, err := os.Stat(catPath); err == nil && fi.IsDir() {
		catPath = filepath.Join(catPath, opencode.CatalogName)
	}
	s, status := boot(nil, false, stderr, stderr)
	defer func() { status = s.close(stderr, status) }()
	if status != exitOK {
		return status
	}
	set := s.settings
	o := &opencode.Opener{MaxSize: set.MaxCodeSize, Keys: set.Keys, Threshold: set.Threshold, StateDir: set.StateDir}
	if *pubFile != "" {
		data, err := os.ReadFile(*pubFile)
		if err != nil {
			fmt.Fprintf(stderr, "sstar catalog verify: %v\n", err)
			return exitUsage
		}
		o.Keys, o.Threshold = []string{strings.TrimSuffix(string(data), "\n")}, 1
	}
	if len(o.Keys) == 0 {
		fmt.Fprintf(stderr, "sstar catalog verify: the system policy trusts no keys (policy.trust(keys=)); give the verifier key to check with: --key NAME.pub\n")
		return exitUsage
	}
	cat, err := o.OpenCatalog(s.d, catPath)
	if s.d.Failed() != nil {
		return fatal(stderr, s.d, s.d.Failed())
	}
	if err != nil {
		fmt.Fprintf(stderr, "sstar catalog verify: %v\n", err)
		return exitFailed
	}
	expires := "never expires"
	if !cat.Expires.IsZero() {
		expires = "expires " + cat.Expires.Format(time.RFC3339)
	}
	fmt.Fprintf(stdout, "%s: ok: version %d signed by %s, %s; rollback: %s\n", catPath, cat.Version, strings.Join(cat.Signers, ", "), expires, cat.State)

	dir := filepath.Dir(catPath)
	bad := false
	listed := map[string]bool{}
	for _, f := range cat.Files() {
		listed[f.Path] = true
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		code, err := o.Read(p)
		switch {
		case err != nil:
			bad = true
			var re *opencode.RefusedError
			if errors.As(err, &re) {
				err = re.Reason
			}
			fmt.Fprintf(stdout, "%s: refused: %v\n", p, err)
		case code.SHA256 != f.SHA256:
			bad = true
			fmt.Fprintf(stdout, "%s: hash differs: catalog sha256 %x, content sha256 %x\n", p, f.SHA256, code.SHA256)
		default:
			fmt.Fprintf(stdout, "%s: ok\n", p)
		}
	}
	opencode.WalkCode(dir, func(p string) error {
		rel, err := filepath.Rel(dir, p)
		if err != nil || listed[filepath.ToSlash(rel)] || nearerCatalog(dir, p) {
			return nil
		}
		bad = true
		fmt.Fprintf(stdout, "%s: not listed (a run refuses it)\n", p)
		return nil
	})
	if s.d.Failed() != nil {
		return fatal(stderr, s.d, s.d.Failed())
	}
	if bad {
		return exitFailed
	}
	return exitOK
}

// nearerCatalog reports whether a catalog between root and the file at p
// (below root) is the one that counts for it.
func nearerCatalog(root, p string) bool {
	for d := filepath.Dir(p); d != root && len(d) > len(root); d = filepath.Dir(d) {
		if _, err := os.Lstat(filepath.Join(d, opencode.CatalogName)); err == nil {
			return true
		}
	}
	return false
}
