package fenceproto

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Result is the outcome of one agent run.
type Result struct {
	ExitCode int
	State    PowerState // for status: from "Status: ON|OFF"
	Plugs    []Plug     // for list and list-status
	Stdout   string     // secrets redacted
	Stderr   string     // secrets redacted
	Duration time.Duration
}

// secretKey reports whether a parameter name carries a secret value.
func secretKey(k string) bool {
	k = strings.ToLower(k)
	return strings.Contains(k, "passw") || strings.Contains(k, "secret") || k == "community" || strings.HasSuffix(k, "_key") && k != "key"
}

// Call runs the fence agent at agentPath with action and params as
// key=value lines on stdin, as Pacemaker does. The agent runs in its own
// process group, killed on timeout or when ctx ends. A non-zero exit is
// reported in Result.ExitCode, not as an error; the error is for agents that
// could not be started, timed out, were cancelled or died on a signal.
func Call(ctx context.Context, agentPath string, action string, params map[string]string, timeout time.Duration) (Result, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var in bytes.Buffer
	fmt.Fprintf(&in, "action=%s\n", action)
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "action" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var secrets []string
	for k, v := range params {
		if secretKey(k) && v != "" {
			secrets = append(secrets, v)
		}
	}
	for _, k := range keys {
		v := params[k]
		if strings.ContainsAny(k+v, "\n\r") || strings.Contains(k, "=") {
			return Result{}, fmt.Errorf("fence agent %s: parameter %q: newline or '=' in name or value", agentPath, k)
		}
		fmt.Fprintf(&in, "%s=%s\n", k, v)
	}
	cmd := exec.CommandContext(ctx, agentPath)
	cmd.Stdin = &in
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	cmd.Env = append(os.Environ(), "PYTHONWARNINGS=ignore")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The whole group: agents run helpers (ipmitool, sg_persist).
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	res := Result{Duration: time.Since(start), ExitCode: -1}
	redact := func(s string) string {
		for _, sec := range secrets {
			s = strings.ReplaceAll(s, sec, "[set]")
		}
		return s
	}
	res.Stdout, res.Stderr = so.String(), redact(se.String())
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	if ctx.Err() != nil {
		e := ctx.Err()
		if errors.Is(e, context.DeadlineExceeded) {
			return res, fmt.Errorf("fence agent %s %s: %w after %v", agentPath, action, ErrTimeout, res.Duration.Round(time.Millisecond))
		}
		return res, fmt.Errorf("fence agent %s %s: %w", agentPath, action, e)
	}
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && res.ExitCode >= 0) {
		return res, fmt.Errorf("fence agent %s %s: %v", agentPath, action, err)
	}
	parseOutput(&res, action)
	res.Stdout = redact(res.Stdout)
	return res, nil
}

func parseOutput(res *Result, action string) {
	for _, line := range strings.Split(res.Stdout, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		switch action {
		case "status":
			if v, ok := strings.CutPrefix(line, "Status: "); ok {
				res.State = parseState(v)
			}
		case "list", "list-status":
			if line == "N/A" {
				continue
			}
			f := strings.Split(line, ",")
			p := Plug{ID: f[0]}
			if len(f) > 1 {
				p.Alias = f[1]
			}
			if action == "list-status" && len(f) > 2 {
				p.State = parseState(f[len(f)-1])
			}
			res.Plugs = append(res.Plugs, p)
		}
	}
	if action == "status" && res.State == StateUnknown && res.ExitCode == ExitBadArgs && strings.Contains(res.Stdout, "OFF") {
		res.State = StateOff
	}
}

func parseState(s string) PowerState {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "ON":
		return StateOn
	case "OFF":
		return StateOff
	}
	return StateUnknown
}

// AgentMetadata is an agent's parsed -o metadata.
type AgentMetadata struct {
	XMLName    xml.Name        `xml:"resource-agent"`
	Name       string          `xml:"name,attr"`
	ShortDesc  string          `xml:"shortdesc,attr"`
	Symlinks   []SymlinkMeta   `xml:"symlink"`
	LongDesc   string          `xml:"longdesc"`
	VendorURL  string          `xml:"vendor-url"`
	Parameters []ParameterMeta `xml:"parameters>parameter"`
	Actions    []ActionMeta    `xml:"actions>action"`
}

// SymlinkMeta is another name the agent is installed under.
type SymlinkMeta struct {
	Name      string `xml:"name,attr"`
	ShortDesc string `xml:"shortdesc,attr"`
}

// ParameterMeta is one <parameter>.
type ParameterMeta struct {
	Name       string      `xml:"name,attr"`
	Unique     xmlBool     `xml:"unique,attr"`
	Required   xmlBool     `xml:"required,attr"`
	Deprecated xmlBool     `xml:"deprecated,attr"`
	Obsoletes  string      `xml:"obsoletes,attr"`
	Getopt     GetoptMeta  `xml:"getopt"`
	Content    ContentMeta `xml:"content"`
	ShortDesc  string      `xml:"shortdesc"`
}

// GetoptMeta is a parameter's command-line form, e.g. "-a, --ip=[ip]".
type GetoptMeta struct {
	Mixed string `xml:"mixed,attr"`
}

// ContentMeta is a parameter's type, default and select options.
type ContentMeta struct {
	Type    ParamType `xml:"type,attr"`
	Default string    `xml:"default,attr"`
	Options []struct {
		Value string `xml:"value,attr"`
	} `xml:"option"`
}

// ActionMeta is one <action>.
type ActionMeta struct {
	Name      string  `xml:"name,attr"`
	OnTarget  xmlBool `xml:"on_target,attr"`
	Automatic xmlBool `xml:"automatic,attr"`
}

type xmlBool bool

func (b *xmlBool) UnmarshalXMLAttr(a xml.Attr) error {
	v, ok := parseBool(a.Value)
	if !ok {
		return fmt.Errorf("attribute %s: bad boolean %q", a.Name.Local, a.Value)
	}
	*b = xmlBool(v)
	return nil
}

// Param returns the parameter called name, or nil.
func (m *AgentMetadata) Param(name string) *ParameterMeta {
	for i := range m.Parameters {
		if m.Parameters[i].Name == name {
			return &m.Parameters[i]
		}
	}
	return nil
}

// Action returns the action called name, or nil.
func (m *AgentMetadata) Action(name string) *ActionMeta {
	for i := range m.Actions {
		if m.Actions[i].Name == name {
			return &m.Actions[i]
		}
	}
	return nil
}

// Unfence reports whether the agent requires unfencing (on automatic="1").
func (m *AgentMetadata) Unfence() bool {
	a := m.Action("on")
	return a != nil && bool(a.Automatic)
}

// UnfenceOnTarget reports whether unfencing runs on the target itself.
func (m *AgentMetadata) UnfenceOnTarget() bool {
	a := m.Action("on")
	return a != nil && bool(a.OnTarget)
}

// HostArgument is the parameter that names the target, as Pacemaker picks
// it: "plug" if listed, else "port", else "".
func (m *AgentMetadata) HostArgument() string {
	for _, n := range []string{"plug", "port"} {
		if m.Param(n) != nil {
			return n
		}
	}
	return ""
}

// ParseMetadata parses an agent's metadata XML.
func ParseMetadata(data []byte) (*AgentMetadata, error) {
	var m AgentMetadata
	if err := xml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("fence agent metadata: %v", err)
	}
	if m.Name == "" {
		return nil, errors.New("fence agent metadata: resource-agent has no name")
	}
	return &m, nil
}

// Metadata runs agentPath -o metadata and parses the XML.
func Metadata(ctx context.Context, agentPath string) (*AgentMetadata, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	res, err := Call(ctx, agentPath, "metadata", nil, 0)
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("fence agent %s metadata: exit %d: %s", agentPath, res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	m, err := ParseMetadata([]byte(res.Stdout))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", agentPath, err)
	}
	return m, nil
}
