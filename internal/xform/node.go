// Package xform reads ODK XForms: form definitions (the XML an XLSForm
// compiles to, as ODK Collect and Enketo render it) and their submissions
// (the instance documents collectors send). It turns a definition into typed
// fields — paths, bind types, repeats, labels in every itext language,
// choices — and a submission into values coerced to those types, reporting
// every value that does not fit with its path and the reason.
//
// Input is hostile: documents with a DTD or entity declarations are refused
// (no billion laughs, no external entities), as are documents nested deeper
// than MaxDepth or with more than MaxElements elements.
package xform

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits on documents.
const (
	MaxDepth    = 32
	MaxElements = 200_000
)

// Errors for malformed documents; wrapped with detail.
var (
	ErrDTD      = errors.New("DTDs and entity declarations are not allowed")
	ErrTooDeep  = fmt.Errorf("elements nested deeper than %d", MaxDepth)
	ErrTooLarge = fmt.Errorf("more than %d elements", MaxElements)
	ErrNotXML   = errors.New("not well-formed XML")
)

// node is an element of a parsed document.
type node struct {
	name     xml.Name
	attrs    []xml.Attr
	children []*node
	text     strings.Builder
}

func (n *node) attr(local string) string {
	for _, a := range n.attrs {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

func (n *node) hasAttr(local string) bool {
	for _, a := range n.attrs {
		if a.Name.Local == local {
			return true
		}
	}
	return false
}

// Text is the element's own character data, trimmed.
func (n *node) Text() string { return strings.TrimSpace(n.text.String()) }

func (n *node) child(local string) *node {
	for _, c := range n.children {
		if c.name.Local == local {
			return c
		}
	}
	return nil
}

func (n *node) all(local string) []*node {
	var out []*node
	for _, c := range n.children {
		if c.name.Local == local {
			out = append(out, c)
		}
	}
	return out
}

// walk visits n and its descendants depth first.
func (n *node) walk(fn func(*node)) {
	fn(n)
	for _, c := range n.children {
		c.walk(fn)
	}
}

// parse builds the element tree of data, refusing DTDs, entity
// declarations, excessive depth and size.
func parse(data []byte) (*node, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	dec.Entity = nil // only the five predefined entities
	var (
		root  *node
		stack []*node
		count int
	)
	for {
		tok, err := dec.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotXML, err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, ErrDTD
		case xml.StartElement:
			count++
			if count > MaxElements {
				return nil, ErrTooLarge
			}
			if len(stack) >= MaxDepth {
				return nil, ErrTooDeep
			}
			n := &node{name: t.Name, attrs: append([]xml.Attr(nil), t.Attr...)}
			if len(stack) == 0 {
				if root != nil {
					return nil, fmt.Errorf("%w: more than one root element", ErrNotXML)
				}
				root = n
			} else {
				parent := stack[len(stack)-1]
				parent.children = append(parent.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) == 0 || stack[len(stack)-1].name.Local != t.Name.Local {
				return nil, fmt.Errorf("%w: unexpected </%s>", ErrNotXML, t.Name.Local)
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			} else if len(bytes.TrimSpace(t)) > 0 {
				return nil, fmt.Errorf("%w: text outside the root element", ErrNotXML)
			}
		}
	}
	if root == nil {
		return nil, fmt.Errorf("%w: no root element", ErrNotXML)
	}
	if len(stack) != 0 {
		return nil, fmt.Errorf("%w: <%s> is not closed", ErrNotXML, stack[len(stack)-1].name.Local)
	}
	return root, nil
}
