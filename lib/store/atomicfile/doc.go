// Package atomicfile replaces files so that a crash leaves either the old
// content or the new one: temp file, fsync, rename or link, fsync the folder.
// Its FS interface is the seam for crash tests: the replicated store does
// all its file work through it, and crashfs stands in for the disk.
package atomicfile
