package config

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
)

// GroupAllowPrefix starts the options that let users other than root use
// process groups: "groups.allow.LABEL = WHO PATTERN...", where WHO is
// user:NAME, user:UID, group:NAME or group:GID and each PATTERN is a
// shell glob of the group names WHO may join. They are options so that
// they replicate and change at run time like any other
// (concordctl config set).
const GroupAllowPrefix = "groups.allow."

// GroupRule is one groups.allow option.
type GroupRule struct {
	Label    string
	Kind     string // "user" or "group"
	Who      string // name or number
	Patterns []string
}

// ParseGroupRule parses the value of a groups.allow option.
func ParseGroupRule(label, value string) (GroupRule, error) {
	f := strings.Fields(value)
	if len(f) < 2 {
		return GroupRule{}, fmt.Errorf("%q: want WHO PATTERN... (e.g. \"user:postgres db-*\" or \"group:haclient *\")", value)
	}
	kind, who, ok := strings.Cut(f[0], ":")
	if !ok || (kind != "user" && kind != "group") || who == "" {
		return GroupRule{}, fmt.Errorf("%q: who must be user:NAME, user:UID, group:NAME or group:GID", f[0])
	}
	if n, err := strconv.ParseUint(who, 10, 32); err == nil && n == 0 && kind == "user" {
		return GroupRule{}, fmt.Errorf("%q: root may use process groups anyway", f[0])
	}
	for _, p := range f[1:] {
		if _, err := path.Match(p, ""); err != nil {
			return GroupRule{}, fmt.Errorf("pattern %q: %v", p, err)
		}
	}
	return GroupRule{Label: label, Kind: kind, Who: who, Patterns: f[1:]}, nil
}

// GroupRules returns the cluster's groups.allow rules, by label; bad ones
// cannot be there (Validate refuses them).
func (c *Cluster) GroupRules() []GroupRule {
	var out []GroupRule
	for k, v := range c.Options {
		label, ok := strings.CutPrefix(k, GroupAllowPrefix)
		if !ok {
			continue
		}
		if r, err := ParseGroupRule(label, v); err == nil {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b GroupRule) int { return strings.Compare(a.Label, b.Label) })
	return out
}

// Allows reports whether group matches one of r's patterns.
func (r GroupRule) Allows(group string) bool {
	for _, p := range r.Patterns {
		if ok, _ := path.Match(p, group); ok {
			return true
		}
	}
	return false
}
