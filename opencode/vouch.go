package opencode

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/internal/ospath"
)

// Require is what vouches for a code file: its stamp, a signed catalog,
// or either. The zero value is RequireStamp.
type Require uint8

const (
	RequireStamp   Require = iota // the stamp (Opener.XattrName)
	RequireCatalog                // a catalog signed by trusted keys
	RequireEither                 // the stamp if it is right, else a catalog
)

var requireNames = [...]string{RequireStamp: "stamp", RequireCatalog: "catalog", RequireEither: "either"}

func (r Require) String() string {
	if int(r) < len(requireNames) {
		return requireNames[r]
	}
	return fmt.Sprintf("Require(%d)", r)
}

// ParseRequire parses "stamp", "catalog" or "either".
func ParseRequire(s string) (Require, error) {
	for r, name := range requireNames {
		if s == name {
			return Require(r), nil
		}
	}
	return RequireStamp, fmt.Errorf("want \"stamp\", \"catalog\" or \"either\", got %q", s)
}

// keyring returns the Opener's trusted keys, parsed at the first call.
func (o *Opener) keyring() (*Keyring, error) {
	k := &o.keys
	k.once.Do(func() {
		k.ring, k.err = NewKeyring(o.Keys, o.Threshold)
		if k.err != nil {
			k.err = fmt.Errorf("%w: catalogs: %v; fix policy.trust(keys=, threshold=) in the system policy", ErrConfig, k.err)
		}
	})
	return k.ring, k.err
}

// vouch is step 8: whatever the Opener requires must vouch for code,
// whose content was read from fd. It sets code.Catalog when a catalog
// vouched.
func (o *Opener) vouch(raise raiseFunc, fd int, code *Code) error {
	switch o.Require {
	case RequireStamp:
		return o.checkStamp(fd, code)
	case RequireCatalog:
		return o.checkCatalog(raise, code)
	case RequireEither:
		stampErr := o.checkStamp(fd, code)
		if stampErr == nil {
			return nil
		}
		err := o.checkCatalog(raise, code)
		var ab *abortError
		switch {
		case err == nil, errors.As(err, &ab), errors.Is(err, ErrConfig):
			return err
		case errors.Is(err, ErrNoCatalog):
			return fmt.Errorf("%w; nor is there a %s in its directory or any above it", stampErr, CatalogName)
		}
		return fmt.Errorf("%w; nor does a stamp vouch for it (%v)", err, stampErr)
	}
	return fmt.Errorf("%w: unknown requirement %v", ErrConfig, o.Require)
}

// checkCatalog vouches for code with the catalog nearest to it.
func (o *Opener) checkCatalog(raise raiseFunc, code *Code) error {
	cat, err := o.catalogFor(raise, filepath.Dir(code.Path))
	if err != nil {
		return err
	}
	rel := relativeTo(cat.Dir, code.Path)
	listed, ok := cat.Lookup(rel)
	if !ok {
		return &CatalogError{Path: cat.Path, Reason: fmt.Errorf("%w: it does not list %s: the file was added after the catalog was signed; review it, then sign the directory again (sstar catalog sign)", ErrNotListed, rel)}
	}
	if listed != code.SHA256 {
		return &CatalogError{Path: cat.Path, Reason: &CatalogMismatchError{File: rel, Listed: hexSum(listed), Content: hexSum(code.SHA256)}}
	}
	code.Catalog = cat
	return nil
}

// relativeTo returns path relative to dir; both are absolute and clean,
// and dir is a parent of path.
func relativeTo(dir, path string) string {
	if dir == "/" {
		return path[1:]
	}
	return strings.TrimPrefix(path, dir+"/")
}

// catalogCache is an Opener's memory of catalogs, so that each is opened
// and checked once per Opener (sstar makes one per run): each code file
// then costs a map lookup and a hash comparison.
type catalogCache struct {
	mu     sync.Mutex
	byDir  map[string]*catalogSlot // the nearest catalog of a directory; nil: none
	byPath map[string]*catalogSlot
}

type catalogSlot struct {
	path string
	once sync.Once
	cat  *Catalog
	err  error
}

// catalogFor returns the verified catalog nearest to dir, or why there is
// none that counts.
func (o *Opener) catalogFor(raise raiseFunc, dir string) (*Catalog, error) {
	if _, err := o.keyring(); err != nil {
		return nil, err
	}
	slot := o.findCatalog(dir)
	if slot == nil {
		return nil, &CatalogError{Reason: fmt.Errorf("%w: there is no %s in %s or any directory above it; sign the directory the code is in: sstar catalog sign --key NAME.key DIR, with a key the system policy trusts", ErrNoCatalog, CatalogName, dir)}
	}
	slot.once.Do(func() { slot.cat, slot.err = o.loadCatalog(raise, slot.path, true) })
	return slot.cat, slot.err
}

// findCatalog looks for CatalogName in dir, then in each directory above
// it, up to the root; the first one found is the one that counts,
// whatever it turns out to be. Anything there but "no such file" counts
// as found (a dangling link, a directory, a FIFO), to be refused when it
// is opened: a catalog that cannot be read never lets a parent's count
// instead.
func (o *Opener) findCatalog(dir string) *catalogSlot {
	c := &o.catalogs
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byDir == nil {
		c.byDir, c.byPath = map[string]*catalogSlot{}, map[string]*catalogSlot{}
	}
	var visited []string
	var found *catalogSlot
	for d := dir; ; d = filepath.Dir(d) {
		if s, ok := c.byDir[d]; ok {
			found = s
			break
		}
		visited = append(visited, d)
		p := filepath.Join(d, CatalogName)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != unix.ENOENT {
			found = c.byPath[p]
			if found == nil {
				found = &catalogSlot{path: p}
				c.byPath[p] = found
			}
			break
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	for _, d := range visited {
		c.byDir[d] = found
	}
	return found
}

// OpenCatalog opens and checks the catalog file at path as a run does
// (the rules of code files, then the signatures, the expiry and the
// rollback state), and raises sstar.catalog on d. Unlike a run it records
// no new version in the state directory. It is `sstar catalog verify`.
func (o *Opener) OpenCatalog(d *audit.Dispatcher, path string) (*Catalog, error) {
	abs, err := ospath.Abs(path)
	if err != nil {
		return nil, &CatalogError{Path: path, Reason: fmt.Errorf("%w: cannot make the path absolute: %v", ErrUnreadable, err)}
	}
	cat, err := o.loadCatalog(func(k audit.Kind, args ...starlark.Value) error {
		return d.Raise(nil, k, args...)
	}, abs, false)
	var ab *abortError
	if errors.As(err, &ab) {
		return nil, ab.err
	}
	return cat, err
}

// loadCatalog opens the catalog file at path through the code files' own
// open (one descriptor: a regular file, at most MaxCatalogSize bytes, on
// an allowed file system, not noexec), verifies its signatures, then its
// expiry and version, records a new version if record is set, and raises
// sstar.catalog.
func (o *Opener) loadCatalog(raise raiseFunc, path string, record bool) (*Catalog, error) {
	refuse := func(err error) (*Catalog, error) { return nil, &CatalogError{Path: path, Reason: err} }
	k, err := o.keyring()
	if err != nil {
		return nil, err
	}
	fd, size, err := o.openFD(path, MaxCatalogSize)
	if err != nil {
		return refuse(err)
	}
	defer unix.Close(fd)
	data, err := readAll(fd, size, MaxCatalogSize)
	if err != nil {
		return refuse(err)
	}
	text, signers, textHash, err := k.verify(data)
	if err != nil {
		return refuse(err)
	}
	cat := &Catalog{
		Path: path, Dir: filepath.Dir(path), SHA256: sha256.Sum256(data),
		Version: text.Version, Expires: text.Expires, Signers: signers,
		files: make(map[string][sha256.Size]byte, len(text.Files)), textHash: textHash,
	}
	if !cat.Expires.IsZero() && !now().Before(cat.Expires) {
		return refuse(fmt.Errorf("%w: version %d expired at %s; sign a new version (sstar catalog sign --version N --expires DURATION)", ErrExpired, cat.Version, cat.Expires.Format(time.RFC3339)))
	}
	for _, f := range text.Files {
		cat.files[f.Path] = f.SHA256
	}
	if cat.State, err = o.checkRollback(cat, record); err != nil {
		return refuse(err)
	}
	expires := ""
	if !cat.Expires.IsZero() {
		expires = cat.Expires.Format(time.RFC3339)
	}
	ids := make(starlark.Tuple, len(signers))
	for i, s := range signers {
		ids[i] = starlark.String(s)
	}
	if err := raise(audit.Catalog, starlark.String(path), starlark.String(hexSum(cat.SHA256)), starlark.MakeUint64(cat.Version), ids, starlark.String(expires), starlark.String(cat.State)); err != nil {
		return nil, &abortError{err}
	}
	return cat, nil
}
