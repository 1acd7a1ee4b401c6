package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/sstar-project/sstar/opencode"
)

const keyUsage = "usage: sstar key generate NAME"

// cmdKey is `sstar key generate NAME`: a new Ed25519 key pair in the
// signed-note format, NAME.key (the signer key, mode 0600) and NAME.pub
// (the verifier key, one line) in the working directory. It never
// overwrites a file, and prints the verifier key, which is what a system
// policy lists in policy.trust(keys=).
func cmdKey(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "generate" {
		fmt.Fprintf(stderr, "sstar key: %s\n", keyUsage)
		return exitUsage
	}
	flags := flag.NewFlagSet("sstar key generate", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	if err := flags.Parse(args[1:]); err != nil {
		fmt.Fprintf(stderr, "sstar key generate: %v\n%s\n", err, keyUsage)
		return exitUsage
	}
	if flags.NArg() != 1 {
		fmt.Fprintf(stderr, "sstar key generate: want one NAME; %s\n", keyUsage)
		return exitUsage
	}
	name := flags.Arg(0)
	if err := checkKeyName(name); err != nil {
		fmt.Fprintf(stderr, "sstar key generate: %v\n", err)
		return exitUsage
	}
	skey, vkey, err := opencode.GenerateKey(rand.Reader, name)
	if err != nil {
		fmt.Fprintf(stderr, "sstar key generate: %v\n", err)
		return exitFailed
	}
	keyFile, pubFile := name+".key", name+".pub"
	for _, f := range []string{keyFile, pubFile} {
		if _, err := os.Lstat(f); !errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(stderr, "sstar key generate: %s exists; refusing to overwrite a key (move it away first if you mean to replace it)\n", f)
			return exitFailed
		}
	}
	if err := writeNew(keyFile, skey+"\n", 0o600); err != nil {
		fmt.Fprintf(stderr, "sstar key generate: %v\n", err)
		return exitFailed
	}
	if err := writeNew(pubFile, vkey+"\n", 0o644); err != nil {
		os.Remove(keyFile)
		fmt.Fprintf(stderr, "sstar key generate: %v\n", err)
		return exitFailed
	}
	fmt.Fprintln(stdout, vkey)
	return exitOK
}

// checkKeyName accepts names that are safe as a file name and as a
// signed note's key name: letters, digits, '.', '_', '-', starting with a
// letter or digit, at most 64 bytes.
func checkKeyName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("key name %q: want 1 to 64 letters, digits, '.', '_' or '-'", name)
	}
	for i, c := range []byte(name) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || i > 0 && (c == '.' || c == '_' || c == '-')
		if !ok {
			return fmt.Errorf("key name %q: want letters, digits, '.', '_' or '-', starting with a letter or digit (the files are NAME.key and NAME.pub in the working directory)", name)
		}
	}
	return nil
}

// writeNew writes a file that must not exist yet, with mode perm
// (whatever the umask), and syncs it.
func writeNew(path, content string, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}
