// Package atomicfile replaces files so that a crash leaves either the old
// content or the new one: temp file, fsync, rename or link, fsync the folder.
package atomicfile
