package opencode

import (
	"fmt"
	"slices"
)

// A fileSystem is a file system type as statfs reports it (f_type, the
// magic numbers of include/uapi/linux/magic.h), named as in
// /proc/filesystems.
type fileSystem struct {
	name  string
	magic uint32
	// kept: the kernel itself keeps the file system's xattrs (on a disk,
	// an image, in memory, or in an overlay's layers), so a stamp read
	// back is a stamp someone wrote with the kernel's permission checks.
	// Otherwise a server answers getxattr (a FUSE daemon, an NFS, SMB,
	// Ceph or 9p server), and its owner chooses every stamp.
	kept bool
}

// fileSystems are the types code may come from by default (kept) and
// the ones a system policy may add (policy.code_file_systems). A type
// not listed is refused and cannot be added.
var fileSystems = []fileSystem{
	{"ext4", 0xef53, true}, // also ext2 and ext3
	{"xfs", 0x58465342, true},
	{"btrfs", 0x9123683e, true},
	{"tmpfs", 0x01021994, true},
	{"ramfs", 0x858458f6, true}, // no xattrs at all: nothing on it has a stamp
	{"overlay", 0x794c7630, true},
	{"squashfs", 0x73717368, true},
	{"erofs", 0xe0f5e1e2, true},
	{"f2fs", 0xf2f52010, true},
	{"bcachefs", 0xca451a4e, true},
	{"jfs", 0x3153464a, true},
	{"zfs", 0x2fc12fc1, true},
	{"fuse", 0x65735546, false}, // virtiofs too: it reports FUSE's type
	{"9p", 0x01021997, false},
	{"nfs", 0x6969, false},
	{"cifs", 0xff534d42, false},
	{"smb3", 0xfe534d42, false},
	{"ceph", 0x00c36400, false},
}

// fileSystemName names the type magic, or says it is unknown.
func fileSystemName(magic uint32) string {
	for _, f := range fileSystems {
		if f.magic == magic {
			return f.name
		}
	}
	return fmt.Sprintf("an unknown file system (type %#x)", magic)
}

// KnownFileSystem reports whether name is a file system type a system
// policy may allow code from beyond the default ones (FUSE, 9p, NFS, SMB,
// Ceph, ...), for policy.code_file_systems.
func KnownFileSystem(name string) bool {
	return slices.ContainsFunc(fileSystems, func(f fileSystem) bool { return f.name == name })
}

// allowedFileSystem reports whether code may come from a file system of
// type magic: one whose xattrs the kernel keeps, or one in extra.
func allowedFileSystem(magic uint32, extra []string) bool {
	for _, f := range fileSystems {
		if f.magic == magic && (f.kept || slices.Contains(extra, f.name)) {
			return true
		}
	}
	return false
}
