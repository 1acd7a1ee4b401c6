package policy

import (
	"fmt"
	"slices"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/opencode"
)

// codeFileSystems is policy.code_file_systems(NAME, ...): code may come
// from these file system types too ("fuse", "nfs", "9p", "cifs", "smb3",
// "ceph"), besides those whose xattrs the kernel keeps. Their servers
// answer getxattr, so whoever runs one chooses its stamps: only the
// system policy may allow them.
func (st *state) codeFileSystems(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := st.check(b, true); err != nil {
		return nil, err
	}
	if len(kwargs) > 0 {
		return nil, fmt.Errorf("%s: unexpected keyword argument %s", b.Name(), kwargs[0][0])
	}
	for _, a := range args {
		name, ok := starlark.AsString(a)
		if !ok || !opencode.KnownFileSystem(name) {
			return nil, fmt.Errorf("%s: %s is not a file system type sstar knows (fuse, 9p, nfs, cifs, smb3, ceph, ...)", b.Name(), a)
		}
		if !slices.Contains(st.next.FileSystems, name) {
			st.next.FileSystems = append(st.next.FileSystems, name)
		}
	}
	return starlark.None, nil
}
