// Package watchdog drives a Linux watchdog device (/dev/watchdog): keep-alive,
// timeout get/set and magic close, behind a small Device interface so the
// self-fencing code can be tested with a counting device.
package watchdog
