// Package fusetest is a FUSE file system for sstar's tests: a small
// server that speaks the kernel's protocol on /dev/fuse directly (no
// libfuse, no fusermount, no module), serving a flat directory of
// read-only files whose extended attributes it makes up. It is the
// attacker of the tests that check what sstar does with code on a file
// system whose server, not the kernel, answers getxattr: no xattr is
// ever written, so no system call that writes one is ever made.
//
// Mount needs the right to mount FUSE: root, or root in a user namespace
// of one's own (FUSE is FS_USERNS_MOUNT), and a /dev/fuse that can be
// opened.
package fusetest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// A File is one file of the file system, in its root directory.
type File struct {
	Name   string
	Data   []byte
	Xattrs map[string]string // what getxattr and listxattr answer
}

// A Server serves one mount.
type Server struct {
	dir   string
	dev   *os.File
	files []File
	conn  uint64 // the mount's device number
	done  chan error
	once  sync.Once
}

// Mount mounts a FUSE file system holding files on dir (an existing
// directory) and serves it until Unmount. The mount is nosuid and nodev,
// as an unprivileged FUSE mount must be.
func Mount(dir string, files []File) (*Server, error) {
	dev, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	opts := fmt.Sprintf("fd=%d,rootmode=40000,user_id=%d,group_id=%d", dev.Fd(), os.Getuid(), os.Getgid())
	if err := unix.Mount("sstar-fusetest", dir, "fuse", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		dev.Close()
		return nil, fmt.Errorf("mount fuse on %s: %w", dir, err)
	}
	s := &Server{dir: dir, dev: dev, files: files, done: make(chan error, 1)}
	var st unix.Stat_t
	go func() { s.done <- s.serve() }()
	// The connection's number in fusectl is the mount's device minor.
	if err := unix.Stat(dir, &st); err == nil {
		s.conn = st.Dev
	}
	return s, nil
}

// Unmount detaches the mount and waits for the server to stop. The
// kernel ends the connection when the last reference to the detached
// mount goes; if a descriptor keeps it for more than a second, Unmount
// aborts the connection through fusectl, where it is mounted.
func (s *Server) Unmount() error {
	var err error
	s.once.Do(func() {
		err = unix.Unmount(s.dir, unix.MNT_DETACH)
		select {
		case <-s.done:
		case <-time.After(time.Second):
			os.WriteFile(fmt.Sprintf("/sys/fs/fuse/connections/%d/abort", unix.Minor(s.conn)), []byte("1"), 0)
			<-s.done
		}
		s.dev.Close()
	})
	return err
}

// Wait waits until the file system is unmounted (by anyone) and the
// server stops.
func (s *Server) Wait() error { return <-s.done }

// The FUSE protocol, include/uapi/linux/fuse.h.
const (
	opLookup      = 1
	opForget      = 2
	opGetattr     = 3
	opOpen        = 14
	opRead        = 15
	opStatfs      = 17
	opRelease     = 18
	opGetxattr    = 22
	opListxattr   = 23
	opFlush       = 25
	opInit        = 26
	opOpendir     = 27
	opReaddir     = 28
	opReleasedir  = 29
	opAccess      = 34
	opInterrupt   = 36
	opDestroy     = 38
	opBatchForget = 42

	inHeaderLen  = 40
	outHeaderLen = 16
	rootID       = 1
)

var le = binary.LittleEndian

func (s *Server) serve() error {
	buf := make([]byte, 1<<20+4096)
	for {
		n, err := unix.Read(int(s.dev.Fd()), buf)
		switch {
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.ENOENT):
			continue // an interrupted request
		case errors.Is(err, unix.ENODEV):
			return nil // unmounted
		case err != nil:
			return err
		case n < inHeaderLen:
			return fmt.Errorf("fusetest: short request of %d bytes", n)
		}
		req := buf[:n]
		op := le.Uint32(req[4:])
		unique := le.Uint64(req[8:])
		node := le.Uint64(req[16:])
		body := req[inHeaderLen:]
		if op == opForget || op == opBatchForget || op == opInterrupt {
			continue // no reply
		}
		out, errno := s.handle(op, node, body)
		reply := make([]byte, outHeaderLen+len(out))
		le.PutUint32(reply[0:], uint32(len(reply)))
		le.PutUint32(reply[4:], uint32(-int32(errno)))
		le.PutUint64(reply[8:], unique)
		copy(reply[outHeaderLen:], out)
		if _, err := unix.Write(int(s.dev.Fd()), reply); err != nil && !errors.Is(err, unix.ENOENT) {
			if errors.Is(err, unix.ENODEV) {
				return nil
			}
			return err
		}
		if op == opDestroy {
			return nil
		}
	}
}

// file returns the file of node id (2 for files[0], and so on).
func (s *Server) file(node uint64) (*File, bool) {
	if node < 2 || node-2 >= uint64(len(s.files)) {
		return nil, false
	}
	return &s.files[node-2], true
}

func (s *Server) handle(op uint32, node uint64, body []byte) ([]byte, unix.Errno) {
	switch op {
	case opInit:
		// fuse_init_out, protocol 7.31: no optional features.
		out := make([]byte, 64)
		le.PutUint32(out[0:], 7)
		le.PutUint32(out[4:], 31)
		le.PutUint32(out[8:], le.Uint32(body[8:])) // max_readahead as asked
		le.PutUint16(out[16:], 1)                  // max_background
		le.PutUint16(out[18:], 1)                  // congestion_threshold
		le.PutUint32(out[20:], 128<<10)            // max_write
		le.PutUint32(out[24:], 1)                  // time_gran
		return out, 0
	case opLookup:
		name, _, _ := strings.Cut(string(body), "\x00")
		if node != rootID {
			return nil, unix.ENOTDIR
		}
		for i := range s.files {
			if s.files[i].Name == name {
				out := make([]byte, 40+88) // fuse_entry_out
				id := uint64(i + 2)
				le.PutUint64(out[0:], id)
				s.attr(out[40:], id)
				return out, 0
			}
		}
		return nil, unix.ENOENT
	case opGetattr:
		if node != rootID {
			if _, ok := s.file(node); !ok {
				return nil, unix.ENOENT
			}
		}
		out := make([]byte, 16+88) // fuse_attr_out
		s.attr(out[16:], node)
		return out, 0
	case opOpen, opOpendir:
		return make([]byte, 16), 0 // fuse_open_out: fh 0
	case opRead:
		f, ok := s.file(node)
		if !ok {
			return nil, unix.EISDIR
		}
		off, size := le.Uint64(body[8:]), uint64(le.Uint32(body[16:]))
		if off >= uint64(len(f.Data)) {
			return nil, 0
		}
		return f.Data[off:min(off+size, uint64(len(f.Data)))], 0
	case opReaddir:
		if node != rootID {
			return nil, unix.ENOTDIR
		}
		off, size := le.Uint64(body[8:]), int(le.Uint32(body[16:]))
		var out []byte
		for i := int(off); i < len(s.files); i++ {
			name := s.files[i].Name
			ent := make([]byte, (24+len(name)+7)&^7) // fuse_dirent, padded
			le.PutUint64(ent[0:], uint64(i+2))
			le.PutUint64(ent[8:], uint64(i+1)) // the offset of the next
			le.PutUint32(ent[16:], uint32(len(name)))
			le.PutUint32(ent[20:], unix.DT_REG)
			copy(ent[24:], name)
			if len(out)+len(ent) > size {
				break
			}
			out = append(out, ent...)
		}
		return out, 0
	case opGetxattr, opListxattr:
		var xattrs map[string]string
		if f, ok := s.file(node); ok {
			xattrs = f.Xattrs
		}
		size := le.Uint32(body[0:])
		var value []byte
		if op == opGetxattr {
			name, _, _ := strings.Cut(string(body[8:]), "\x00")
			v, ok := xattrs[name]
			if !ok {
				return nil, unix.ENODATA
			}
			value = []byte(v)
		} else {
			names := make([]string, 0, len(xattrs))
			for k := range xattrs {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				value = append(append(value, k...), 0)
			}
		}
		if size == 0 { // fuse_getxattr_out: the size only
			out := make([]byte, 8)
			le.PutUint32(out, uint32(len(value)))
			return out, 0
		}
		if uint32(len(value)) > size {
			return nil, unix.ERANGE
		}
		return value, 0
	case opStatfs:
		out := make([]byte, 80) // fuse_kstatfs
		le.PutUint64(out[24:], uint64(len(s.files)))
		le.PutUint32(out[40:], 4096) // bsize
		le.PutUint32(out[44:], 255)  // namelen
		le.PutUint32(out[48:], 4096) // frsize
		return out, 0
	case opRelease, opReleasedir, opFlush, opAccess:
		return nil, 0
	}
	return nil, unix.ENOSYS
}

// attr writes the fuse_attr of node: the root a directory, each file a
// read-only regular file, all owned by whoever mounted.
func (s *Server) attr(out []byte, node uint64) {
	le.PutUint64(out[0:], node) // ino
	mode, nlink, size := uint32(unix.S_IFDIR|0o755), uint32(2), uint64(0)
	if f, ok := s.file(node); ok {
		mode, nlink, size = unix.S_IFREG|0o755, 1, uint64(len(f.Data))
	}
	le.PutUint64(out[8:], size)
	le.PutUint64(out[16:], (size+511)/512) // blocks
	le.PutUint32(out[60:], mode)
	le.PutUint32(out[64:], nlink)
	le.PutUint32(out[68:], uint32(os.Getuid()))
	le.PutUint32(out[72:], uint32(os.Getgid()))
	le.PutUint32(out[80:], 4096) // blksize
}
