// Package metadata reads the Hasura metadata (v3 directory layout) and
// checks it against what it describes: the migrated database (tables,
// columns, foreign keys), shala's router (every handler URL is a route, every
// Hasura-facing route is used) and the Go types behind each handler (action
// arguments and outputs, event rows). Hasura cannot run on the build
// machines, so this check is what keeps metadata, schema and code from
// drifting apart.
package metadata

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Metadata is the part of Hasura's metadata shala cares about.
type Metadata struct {
	Version      int
	Sources      []Source
	Actions      []Action
	CustomTypes  CustomTypes
	ActionsSDL   string
	CronTriggers []CronTrigger
	// Problems are what is malformed in the files themselves — keys Hasura
	// does not read (typos it would silently ignore), required keys
	// missing — each with its file and line.
	Problems []string
}

// Source is a database.
type Source struct {
	Name          string `yaml:"name"`
	Kind          string `yaml:"kind"`
	Configuration struct {
		ConnectionInfo struct {
			DatabaseURL struct {
				FromEnv string `yaml:"from_env"`
			} `yaml:"database_url"`
		} `yaml:"connection_info"`
	} `yaml:"configuration"`
	Tables    []Table    `yaml:"tables"`
	Functions []Function `yaml:"functions"`
}

// Function is a tracked SQL function.
type Function struct {
	Function    QualifiedTable `yaml:"function"` // name and schema
	Permissions []struct {
		Role string `yaml:"role"`
	} `yaml:"permissions"`
}

// QualifiedTable names a table.
type QualifiedTable struct {
	Name   string `yaml:"name"`
	Schema string `yaml:"schema"`
}

func (q QualifiedTable) String() string { return q.Schema + "." + q.Name }

// Table is one tracked table.
type Table struct {
	Table               QualifiedTable `yaml:"table"`
	ObjectRelationships []Relationship `yaml:"object_relationships"`
	ArrayRelationships  []Relationship `yaml:"array_relationships"`
	InsertPermissions   []Permission   `yaml:"insert_permissions"`
	SelectPermissions   []Permission   `yaml:"select_permissions"`
	UpdatePermissions   []Permission   `yaml:"update_permissions"`
	DeletePermissions   []Permission   `yaml:"delete_permissions"`
	EventTriggers       []EventTrigger `yaml:"event_triggers"`
}

// Relationship is an object or array relationship.
type Relationship struct {
	Name  string `yaml:"name"`
	Using struct {
		// ForeignKeyConstraintOn is a column name (object relationship on
		// this table's FK) or {column, table} (FK on the remote table).
		ForeignKeyConstraintOn yaml.Node `yaml:"foreign_key_constraint_on"`
		ManualConfiguration    *struct {
			RemoteTable   QualifiedTable    `yaml:"remote_table"`
			ColumnMapping map[string]string `yaml:"column_mapping"`
		} `yaml:"manual_configuration"`
	} `yaml:"using"`
}

// Permission is one role's permission of one kind.
type Permission struct {
	Role       string `yaml:"role"`
	Permission struct {
		Columns           yaml.Node      `yaml:"columns"` // list, or "*"
		Filter            map[string]any `yaml:"filter"`
		Check             map[string]any `yaml:"check"`
		Set               map[string]any `yaml:"set"`
		AllowAggregations bool           `yaml:"allow_aggregations"`
	} `yaml:"permission"`
}

// ColumnList returns the permission's columns; all is true for "*".
func (p Permission) ColumnList() (cols []string, all bool, err error) {
	return columnList("columns", p.Permission.Columns)
}

// columnList reads a column list: absent, "*" (all is true) or a list of
// names; anything else is an error naming key.
func columnList(key string, n yaml.Node) (cols []string, all bool, err error) {
	switch {
	case n.Kind == 0:
		return nil, false, nil
	case n.Kind == yaml.ScalarNode && n.Value == "*":
		return nil, true, nil
	case n.Kind == yaml.SequenceNode:
		if err := n.Decode(&cols); err != nil {
			return nil, false, fmt.Errorf("%s: line %d: want a list of column names: %w", key, n.Line, err)
		}
		return cols, false, nil
	default:
		return nil, false, fmt.Errorf("%s: line %d: want a list of column names or '*'", key, n.Line)
	}
}

// Header is a webhook header.
type Header struct {
	Name         string `yaml:"name"`
	Value        string `yaml:"value"`
	ValueFromEnv string `yaml:"value_from_env"`
}

// EventTrigger is an event trigger on a table.
type EventTrigger struct {
	Name       string `yaml:"name"`
	Definition struct {
		EnableManual bool       `yaml:"enable_manual"`
		Insert       *opColumns `yaml:"insert"`
		Update       *opColumns `yaml:"update"`
		Delete       *opColumns `yaml:"delete"`
	} `yaml:"definition"`
	RetryConf struct {
		IntervalSec int `yaml:"interval_sec"`
		NumRetries  int `yaml:"num_retries"`
		TimeoutSec  int `yaml:"timeout_sec"`
	} `yaml:"retry_conf"`
	Webhook        string   `yaml:"webhook"`
	WebhookFromEnv string   `yaml:"webhook_from_env"`
	Headers        []Header `yaml:"headers"`
	CleanupConfig  *struct {
		Schedule string `yaml:"schedule"`
	} `yaml:"cleanup_config"`
}

type opColumns struct {
	Columns yaml.Node `yaml:"columns"`
	Payload yaml.Node `yaml:"payload"` // columns sent in the event, when not all
}

// Action is one action.
type Action struct {
	Name       string `yaml:"name"`
	Definition struct {
		Kind                 string   `yaml:"kind"`
		Handler              string   `yaml:"handler"`
		ForwardClientHeaders bool     `yaml:"forward_client_headers"`
		Headers              []Header `yaml:"headers"`
		Timeout              int      `yaml:"timeout"`
		Type                 string   `yaml:"type"`
	} `yaml:"definition"`
	Permissions []struct {
		Role string `yaml:"role"`
	} `yaml:"permissions"`
	Comment string `yaml:"comment"`
}

// CustomTypes lists the action types by name.
type CustomTypes struct {
	Enums        []named `yaml:"enums"`
	InputObjects []named `yaml:"input_objects"`
	Objects      []named `yaml:"objects"`
	Scalars      []named `yaml:"scalars"`
}

type named struct {
	Name string `yaml:"name"`
}

// CronTrigger is one cron trigger.
type CronTrigger struct {
	Name              string   `yaml:"name"`
	Webhook           string   `yaml:"webhook"`
	Schedule          string   `yaml:"schedule"`
	IncludeInMetadata bool     `yaml:"include_in_metadata"`
	Payload           any      `yaml:"payload"`
	Headers           []Header `yaml:"headers"`
	RetryConf         struct {
		NumRetries           int `yaml:"num_retries"`
		RetryIntervalSeconds int `yaml:"retry_interval_seconds"`
		TimeoutSeconds       int `yaml:"timeout_seconds"`
		ToleranceSeconds     int `yaml:"tolerance_seconds"`
	} `yaml:"retry_conf"`
}

// Load reads the metadata directory dir. Files that cannot be read or
// decoded are errors; keys Hasura does not read and required keys that are
// missing are collected in Problems.
func Load(dir string) (*Metadata, error) {
	m := &Metadata{}
	shape := &shapeChecker{dir: dir, files: map[*yaml.Node]string{}}
	read := func(file, kind string, v any) error {
		path := filepath.Join(dir, file)
		node, err := loadNode(path, 0, shape.files)
		if err != nil {
			return err
		}
		shape.check(node, kind, file)
		if err := node.Decode(v); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	}
	var version struct {
		Version int `yaml:"version"`
	}
	if err := read("version.yaml", "version", &version); err != nil {
		return nil, err
	}
	m.Version = version.Version
	if err := read(filepath.Join("databases", "databases.yaml"), "[]source", &m.Sources); err != nil {
		return nil, err
	}
	var actions struct {
		Actions     []Action    `yaml:"actions"`
		CustomTypes CustomTypes `yaml:"custom_types"`
	}
	if err := read("actions.yaml", "actions_file", &actions); err != nil {
		return nil, err
	}
	m.Actions, m.CustomTypes = actions.Actions, actions.CustomTypes
	sdl, err := os.ReadFile(filepath.Join(dir, "actions.graphql"))
	if err != nil {
		return nil, err
	}
	m.ActionsSDL = string(sdl)
	if err := read("cron_triggers.yaml", "[]cron_trigger", &m.CronTriggers); err != nil {
		return nil, err
	}
	m.Problems = shape.problems
	return m, nil
}

// loadNode reads path, resolving Hasura's "!include <file>" strings
// relative to the including file; files records the file of each included
// node, for messages.
func loadNode(path string, depth int, files map[*yaml.Node]string) (*yaml.Node, error) {
	if depth > 10 {
		return nil, fmt.Errorf("%s: !include nested too deeply", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return &yaml.Node{Kind: yaml.MappingNode}, nil
	}
	root := doc.Content[0]
	if err := resolveIncludes(root, filepath.Dir(path), depth, files); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return root, nil
}

func resolveIncludes(n *yaml.Node, dir string, depth int, files map[*yaml.Node]string) error {
	for i, c := range n.Content {
		if c.Kind == yaml.ScalarNode && strings.HasPrefix(c.Value, "!include ") {
			path := filepath.Join(dir, strings.TrimSpace(strings.TrimPrefix(c.Value, "!include ")))
			inc, err := loadNode(path, depth+1, files)
			if err != nil {
				return err
			}
			files[inc] = path
			n.Content[i] = inc
			continue
		}
		if err := resolveIncludes(c, dir, depth, files); err != nil {
			return err
		}
	}
	return nil
}
