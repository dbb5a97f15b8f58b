package config

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// The README's configuration table sits between these markers; Readme
// rewrites what is between them and nothing else.
const (
	tableStart = "<!-- config-table (generated from internal/config/config.go: go run ./internal/config/readme) -->"
	tableEnd   = "<!-- /config-table -->"
)

// quoted is a 'quoted span' in help text: a quote after a space or an
// opening parenthesis, up to the next quote. An apostrophe (school's,
// River's) follows a letter and is left alone.
var quoted = regexp.MustCompile(`(^|[\s(])'([^'\s][^']*)'`)

// Markdown is the configuration table: every variable in declaration order,
// 'quoted' spans of the help as code.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| variable | default | vault key | secret | meaning |\n|---|---|---|---|---|\n")
	dash := func(s string) string {
		if s == "" {
			return "—"
		}
		return "`" + s + "`"
	}
	for _, v := range Table() {
		secret := ""
		if v.Secret {
			secret = "yes"
		}
		help := quoted.ReplaceAllString(v.Help, "$1`$2`")
		if v.OneOf != "" {
			help += " One of: `" + strings.ReplaceAll(v.OneOf, ",", "`, `") + "`."
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", v.Name, dash(v.Default), dash(v.Vault), secret, strings.ReplaceAll(help, "|", `\|`))
	}
	return b.String()
}

// Readme returns readme with the configuration table between its markers
// replaced by Markdown(). Applying it twice changes nothing. It fails
// unless each marker appears exactly once, start before end.
func Readme(readme []byte) ([]byte, error) {
	if n := bytes.Count(readme, []byte(tableStart)); n != 1 {
		return nil, fmt.Errorf("README: want the marker %q once, found it %d times", tableStart, n)
	}
	if n := bytes.Count(readme, []byte(tableEnd)); n != 1 {
		return nil, fmt.Errorf("README: want the marker %q once, found it %d times", tableEnd, n)
	}
	start := bytes.Index(readme, []byte(tableStart)) + len(tableStart)
	end := bytes.Index(readme, []byte(tableEnd))
	if end < start {
		return nil, errors.New("README: the table's end marker comes before its start")
	}
	var out bytes.Buffer
	out.Write(readme[:start])
	out.WriteString("\n" + Markdown())
	out.Write(readme[end:])
	return out.Bytes(), nil
}
