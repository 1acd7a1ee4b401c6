package opencode

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// A catalog is the third way to vouch for code, after the user.* and
// trusted.* stamps: a list of files and their SHA-256 hashes, signed with
// keys the system policy trusts, kept in a file named CatalogName in the
// directory it describes. Unlike a stamp it is a file, so it travels
// through tar, git and container image layers, which drop xattrs; and
// writing a code file is no longer enough to vouch for it, nor is being
// root on the machine that runs it: only the holders of enough signer
// keys can.
//
// A catalog is a signed note (golang.org/x/mod/sumdb/note, the format of
// the Go checksum database: Ed25519, verifier keys "name+hash+key",
// several signatures per note). Its text is, byte for byte:
//
//	sstar catalog v1\n
//	version N\n                              N: decimal, no leading zeros
//	expires 2027-01-31T00:00:00Z\n           optional; UTC, seconds
//	HASH  PATH\n                             one line per file, sorted by PATH
//
// HASH is 64 lowercase hex digits, then two spaces (as sha256sum
// writes), then PATH relative to the catalog's directory: slash
// separated, no empty, "." or ".." elements, no leading or trailing
// slash. Lines are sorted by PATH in byte order, with no duplicates.
// Anything else is malformed: one catalog has one spelling.

// CatalogName is the name of a catalog file. A code file is vouched for by
// the first one found in its own directory or a parent.
const CatalogName = "sstar.catalog"

// CatalogFormat is the first line of a catalog's text.
const CatalogFormat = "sstar catalog v1"

// MaxCatalogSize is the largest catalog file read: some 160,000 entries
// of 100 bytes. It does not follow the code size limit, so a small
// max_code_size does not cap how many files a catalog can list.
const MaxCatalogSize = 16 << 20

// Catalog refusals. A code file refused because of its catalog has a
// *CatalogError as its RefusedError's reason, wrapping one of these.
var (
	ErrNoCatalog           = errors.New("no catalog")
	ErrMalformedCatalog    = errors.New("malformed catalog")
	ErrNotListed           = errors.New("not listed in the catalog")
	ErrCatalogMismatch     = errors.New("hash differs from the catalog's")
	ErrNoTrustedSignature  = errors.New("no trusted signature")
	ErrNotEnoughSignatures = errors.New("not enough trusted signatures")
	ErrUnknownKey          = errors.New("signed by an unknown key")
	ErrExpired             = errors.New("catalog expired")
	ErrRolledBack          = errors.New("catalog rolled back")
)

// A CatalogError is a refusal that comes from a catalog: the catalog
// itself (its signatures, expiry, version, or the file it is), or what it
// says about one code file (not listed, another hash).
type CatalogError struct {
	Path   string // the catalog file, absolute ("" for ErrNoCatalog)
	Reason error  // wraps one of the catalog refusals, or a file refusal
}

func (e *CatalogError) Error() string {
	if e.Path == "" {
		return e.Reason.Error()
	}
	return fmt.Sprintf("catalog %s: %v", e.Path, e.Reason)
}

func (e *CatalogError) Unwrap() error { return e.Reason }

// A CatalogMismatchError is the reason of a refusal whose catalog lists
// other content for the file than it has. It matches ErrCatalogMismatch.
type CatalogMismatchError struct {
	File    string // the path as listed, relative to the catalog
	Listed  string // the hash the catalog lists (lowercase hex)
	Content string // the hash of the content read (lowercase hex)
}

func (e *CatalogMismatchError) Error() string {
	return fmt.Sprintf("%v: it lists %s with sha256 %s, the content is sha256 %s; the file changed after the catalog was signed: review it, then sign the directory again (sstar catalog sign)", ErrCatalogMismatch, e.File, e.Listed, e.Content)
}

// Is makes errors.Is(err, ErrCatalogMismatch) hold.
func (e *CatalogMismatchError) Is(target error) bool { return target == ErrCatalogMismatch }

// A CatalogEntry is one line of a catalog: a file and its hash.
type CatalogEntry struct {
	Path   string // relative to the catalog's directory, slash separated
	SHA256 [sha256.Size]byte
}

// CatalogText is the content of a catalog before it is signed.
type CatalogText struct {
	Version uint64
	Expires time.Time // zero: it does not expire
	Files   []CatalogEntry
}

// Format returns the text in the catalog format, files sorted. It fails
// on what Parse would refuse: a path that is not a clean relative path, a
// duplicate, an expiry that is not a whole second in a four-digit year.
func (c *CatalogText) Format() (string, error) {
	files := append([]CatalogEntry(nil), c.Files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	var b strings.Builder
	b.WriteString(CatalogFormat + "\n")
	fmt.Fprintf(&b, "version %d\n", c.Version)
	if !c.Expires.IsZero() {
		e := c.Expires.UTC()
		if !e.Equal(e.Truncate(time.Second)) || e.Year() < 0 || e.Year() > 9999 {
			return "", fmt.Errorf("expiry %v is not a whole second between the years 0 and 9999", c.Expires)
		}
		b.WriteString("expires " + e.Format(time.RFC3339) + "\n")
	}
	for i, f := range files {
		if err := checkCatalogPath(f.Path); err != nil {
			return "", fmt.Errorf("%q: %v", f.Path, err)
		}
		if i > 0 && files[i-1].Path == f.Path {
			return "", fmt.Errorf("%q is listed twice", f.Path)
		}
		b.WriteString(hex.EncodeToString(f.SHA256[:]) + "  " + f.Path + "\n")
	}
	return b.String(), nil
}

// ParseCatalogText parses a catalog's text, which must be in the one
// canonical spelling that Format writes. The text of an unsigned or
// untrusted note must not be acted on; OpenCatalog parses only text whose
// signatures verified.
func ParseCatalogText(text string) (*CatalogText, error) {
	bad := func(line int, format string, args ...any) (*CatalogText, error) {
		return nil, fmt.Errorf("%w: line %d: %s", ErrMalformedCatalog, line, fmt.Sprintf(format, args...))
	}
	if !strings.HasSuffix(text, "\n") {
		return nil, fmt.Errorf("%w: the text does not end with a newline", ErrMalformedCatalog)
	}
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("%w: not UTF-8", ErrMalformedCatalog)
	}
	lines := strings.Split(text[:len(text)-1], "\n")
	if lines[0] != CatalogFormat {
		return bad(1, "want %q, the format this sstar reads", CatalogFormat)
	}
	if len(lines) < 2 {
		return bad(2, "no version line")
	}
	c := new(CatalogText)
	v, ok := strings.CutPrefix(lines[1], "version ")
	n, err := strconv.ParseUint(v, 10, 64)
	if !ok || err != nil || strconv.FormatUint(n, 10) != v {
		return bad(2, "want \"version N\" (a decimal number without leading zeros)")
	}
	c.Version = n
	i := 2
	if i < len(lines) && strings.HasPrefix(lines[i], "expires ") {
		s := strings.TrimPrefix(lines[i], "expires ")
		t, err := time.Parse(time.RFC3339, s)
		if err != nil || t.Location() != time.UTC || t.Format(time.RFC3339) != s {
			return bad(i+1, "want \"expires YYYY-MM-DDTHH:MM:SSZ\" (RFC 3339, UTC, whole seconds)")
		}
		c.Expires = t
		i++
	}
	c.Files = make([]CatalogEntry, 0, len(lines)-i)
	for ; i < len(lines); i++ {
		line := lines[i]
		if len(line) < 2*sha256.Size+3 || line[2*sha256.Size:2*sha256.Size+2] != "  " {
			return bad(i+1, "want \"HASH  PATH\" (64 lowercase hex digits, two spaces, a path)")
		}
		sum, ok := parseHexSum(line[:2*sha256.Size])
		if !ok {
			return bad(i+1, "the hash is not 64 lowercase hex digits")
		}
		p := line[2*sha256.Size+2:]
		if err := checkCatalogPath(p); err != nil {
			return bad(i+1, "path %q: %v", p, err)
		}
		if k := len(c.Files); k > 0 && c.Files[k-1].Path >= p {
			return bad(i+1, "path %q is not after %q: entries are sorted by path, each once", p, c.Files[k-1].Path)
		}
		c.Files = append(c.Files, CatalogEntry{Path: p, SHA256: sum})
	}
	return c, nil
}

// parseHexSum decodes 64 lowercase hex digits, without allocating: a
// catalog has one per entry.
func parseHexSum(s string) ([sha256.Size]byte, bool) {
	var sum [sha256.Size]byte
	if len(s) != 2*sha256.Size {
		return sum, false
	}
	for i := range sum {
		hi, ok1 := lowerHex(s[2*i])
		lo, ok2 := lowerHex(s[2*i+1])
		if !ok1 || !ok2 {
			return sum, false
		}
		sum[i] = hi<<4 | lo
	}
	return sum, true
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// checkCatalogPath accepts a clean, relative, slash-separated path.
func checkCatalogPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case !utf8.ValidString(p):
		return errors.New("not UTF-8")
	case strings.HasPrefix(p, "/"):
		return errors.New("absolute; paths are relative to the catalog's directory")
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return errors.New("a control character")
		}
	}
	for rest := p; rest != ""; {
		var e string
		e, rest, _ = strings.Cut(rest, "/")
		if rest == "" && strings.HasSuffix(p, "/") {
			return errors.New("an empty element (a doubled or trailing slash)")
		}
		switch e {
		case "":
			return errors.New("an empty element (a doubled or trailing slash)")
		case ".", "..":
			return fmt.Errorf("a %q element", e)
		}
	}
	return nil
}

// A Catalog is a catalog file that verified: its signatures are by enough
// trusted keys, it has not expired, and (with a state directory) it is
// not older than one accepted before for its directory.
type Catalog struct {
	Path    string            // the catalog file, absolute
	Dir     string            // the directory its paths are relative to
	SHA256  [sha256.Size]byte // of the catalog file as read
	Version uint64
	Expires time.Time // zero: it does not expire
	Signers []string  // the trusted keys whose signatures verified, "name+hash"
	// State says what the rollback check did: "no state_dir (rollback is
	// not detected)", "version N is the highest accepted", "recorded
	// version N (was M)", or why a higher version could not be recorded.
	State string

	files    map[string][sha256.Size]byte
	textHash [sha256.Size]byte // of the signed text, what the state records
}

// Lookup returns the hash the catalog lists for path (relative to Dir).
func (c *Catalog) Lookup(path string) ([sha256.Size]byte, bool) {
	sum, ok := c.files[path]
	return sum, ok
}

// Files returns the catalog's entries, sorted by path.
func (c *Catalog) Files() []CatalogEntry {
	out := make([]CatalogEntry, 0, len(c.files))
	for p, sum := range c.files {
		out = append(out, CatalogEntry{Path: p, SHA256: sum})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Describe says what vouches in the words of `sstar verify`: "catalog
// PATH version N signed by KEY[, KEY...]".
func (c *Catalog) Describe() string {
	return fmt.Sprintf("catalog %s version %d signed by %s", c.Path, c.Version, strings.Join(c.Signers, ", "))
}

// A Keyring is the set of verifier keys whose signatures count on a
// catalog, and how many must have signed.
type Keyring struct {
	verifiers note.Verifiers
	names     map[string]bool // "name+hash" of every key
	threshold int
}

// NewKeyring parses verifier keys (note format, "name+hash+key") and
// checks the threshold: at least one key, each once, and a threshold from
// 1 to the number of keys (0 means 1).
func NewKeyring(keys []string, threshold int) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("no trusted keys")
	}
	if threshold == 0 {
		threshold = 1
	}
	if threshold < 1 || threshold > len(keys) {
		return nil, fmt.Errorf("threshold %d: want 1 to %d, the number of keys", threshold, len(keys))
	}
	k := &Keyring{names: map[string]bool{}, threshold: threshold}
	var list []note.Verifier
	for i, s := range keys {
		if strings.HasPrefix(s, "PRIVATE+KEY+") {
			// Never echo it: the message goes to logs and terminals.
			return nil, fmt.Errorf("key %d is a signer key, which is secret (consider it leaked if others saw this file); list the verifier key instead, the line of the .pub file sstar key generate writes", i+1)
		}
		v, err := note.NewVerifier(s)
		if err != nil {
			shown := s
			if len(shown) > 100 {
				shown = shown[:100] + "..."
			}
			return nil, fmt.Errorf("key %d, %q, is not a verifier key (name+hash+key, as in the .pub file sstar key generate writes): %v", i+1, shown, err)
		}
		id := keyID(v.Name(), v.KeyHash())
		if k.names[id] {
			return nil, fmt.Errorf("key %s is listed twice", id)
		}
		k.names[id] = true
		list = append(list, v)
	}
	k.verifiers = note.VerifierList(list...)
	return k, nil
}

func keyID(name string, hash uint32) string { return fmt.Sprintf("%s+%08x", name, hash) }

// Threshold is how many trusted keys must have signed a catalog.
func (k *Keyring) Threshold() int { return k.threshold }

// verify checks the signatures of a catalog file's content and parses the
// text of one that verified. Expiry and rollback are the caller's.
func (k *Keyring) verify(msg []byte) (*CatalogText, []string, [sha256.Size]byte, error) {
	var none [sha256.Size]byte
	n, err := note.Open(msg, k.verifiers)
	var unverified *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case errors.As(err, &unverified):
		var ids []string
		for _, s := range unverified.Note.UnverifiedSigs {
			ids = append(ids, keyID(s.Name, s.Hash))
		}
		return nil, nil, none, fmt.Errorf("%w: signed only by %s, which the system policy does not trust; sign it with a trusted key, or add the key to policy.trust(keys=)", ErrUnknownKey, strings.Join(ids, ", "))
	case errors.As(err, &invalid):
		return nil, nil, none, fmt.Errorf("%w: the signature by %s does not verify: the catalog was changed after it was signed; sign it again", ErrNoTrustedSignature, keyID(invalid.Name, invalid.Hash))
	case err != nil:
		return nil, nil, none, fmt.Errorf("%w: not a signed note (text, a blank line, then signature lines \"— NAME SIGNATURE\"): %v", ErrMalformedCatalog, err)
	}
	var signers []string
	for _, s := range n.Sigs {
		signers = append(signers, keyID(s.Name, s.Hash))
	}
	if len(signers) < k.threshold {
		return nil, nil, none, fmt.Errorf("%w: signed by %d trusted key%s (%s), the system policy requires %d", ErrNotEnoughSignatures, len(signers), plural(len(signers)), strings.Join(signers, ", "), k.threshold)
	}
	text, err := ParseCatalogText(n.Text)
	if err != nil {
		return nil, nil, none, err
	}
	return text, signers, sha256.Sum256([]byte(n.Text)), nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// now is the clock expiry is checked against; tests move it.
var now = time.Now

// SignCatalog signs text with the signer key skey (note format,
// "PRIVATE+KEY+name+hash+key"), keeping the signatures of prev when prev
// is a catalog file with the same text: that is how a second key adds its
// signature (threshold signing). A signature by the same key is replaced.
func SignCatalog(text string, skey string, prev []byte) ([]byte, error) {
	s, err := note.NewSigner(strings.TrimSpace(skey))
	if err != nil {
		return nil, fmt.Errorf("not a signer key (as in the .key file sstar key generate writes): %v", err)
	}
	n := &note.Note{Text: text}
	if prev != nil {
		_, err := note.Open(prev, note.VerifierList())
		var unverified *note.UnverifiedNoteError
		if !errors.As(err, &unverified) {
			return nil, fmt.Errorf("the existing catalog is not a signed note: %v", err)
		}
		if unverified.Note.Text != text {
			return nil, errors.New("the existing catalog has other text")
		}
		n.UnverifiedSigs = unverified.Note.UnverifiedSigs
	}
	return note.Sign(n, s)
}

// CatalogSignatures returns the names ("name+hash") of the signatures on
// a catalog file's content and its text, verified or not: for `sstar
// catalog sign`, which keeps them, and messages. It does not check them.
func CatalogSignatures(msg []byte) (text string, signers []string, err error) {
	_, err = note.Open(msg, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		return "", nil, fmt.Errorf("%w: not a signed note: %v", ErrMalformedCatalog, err)
	}
	for _, s := range unverified.Note.UnverifiedSigs {
		signers = append(signers, keyID(s.Name, s.Hash))
	}
	return unverified.Note.Text, signers, nil
}

// GenerateKey returns a new signer key and its verifier key, in the note
// format, for name.
func GenerateKey(rand io.Reader, name string) (skey, vkey string, err error) {
	return note.GenerateKey(rand, name)
}

// hexSum is the lowercase hex of a hash.
func hexSum(sum [sha256.Size]byte) string { return hex.EncodeToString(sum[:]) }
