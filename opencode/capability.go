package opencode

import "golang.org/x/sys/unix"

// capSysAdmin is CAP_SYS_ADMIN's number (include/uapi/linux/capability.h).
const capSysAdmin = 21

// hasCapSysAdmin reports whether the process has CAP_SYS_ADMIN in its
// effective set, without which the kernel hides trusted.* attributes. An
// error reading the capabilities counts as not having it: the answer
// only words a refusal.
func hasCapSysAdmin() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[capSysAdmin/32].Effective&(1<<(capSysAdmin%32)) != 0
}
