package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/concord-ha/concord/lib/api/fenceproto"
)

func TestMetadata(t *testing.T) {
	var out bytes.Buffer
	code := fenceproto.Run(context.Background(), agent(), nil, strings.NewReader("action=metadata\n"), &out, &bytes.Buffer{})
	for _, want := range []string{`name="devices"`, `name="plug"`, `<action name="reboot"`, `name="power_timeout"`} {
		if code != 0 || !strings.Contains(out.String(), want) {
			t.Errorf("metadata lacks %q", want)
		}
	}
}

func TestNotSBD(t *testing.T) {
	p := filepath.Join(t.TempDir(), "blank")
	os.WriteFile(p, make([]byte, 4096), 0o600)
	var errb bytes.Buffer
	code := fenceproto.Run(context.Background(), agent(), nil, strings.NewReader("action=status\nplug=n1\ndevices="+p+"\n"), &bytes.Buffer{}, &errb)
	if code == 0 || !strings.Contains(errb.String(), "not an SBD device") {
		t.Errorf("exit %d, %q", code, errb.String())
	}
}
