package sbd

import (
	"fmt"
	"unsafe"
)

// align is the buffer alignment O_DIRECT needs (logical block size, at
// most a page).
const align = 4096

func alignedBuf(n int) []byte {
	b := make([]byte, n+align)
	off := int(uintptr(unsafe.Pointer(&b[0])) & (align - 1))
	if off != 0 {
		off = align - off
	}
	return b[off : off+n : off+n]
}

func readAligned(st Store, off int64, n int) ([]byte, error) {
	b := alignedBuf(n)
	got, err := st.ReadAt(b, off)
	if got == n {
		return b, nil
	}
	if err == nil {
		err = fmt.Errorf("short read of %d bytes at %d", got, off)
	}
	return nil, err
}

func writeAligned(st Store, off int64, p []byte) error {
	b := alignedBuf(len(p))
	copy(b, p)
	n, err := st.WriteAt(b, off)
	if err == nil && n != len(p) {
		err = fmt.Errorf("short write of %d bytes at %d", n, off)
	}
	return err
}
