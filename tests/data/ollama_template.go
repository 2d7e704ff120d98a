// Renders Modelfile TEMPLATEs with Go's own text/template on Ollama's template data (a test helper; stdlib only).
//
// The types mirror what Ollama's template/template.go hands a template (templateMessage, templateToolCall,
// templateTool, ... with their JSON tags and String methods) and its api.ToolProperty, whose nested `properties`
// keep the request's key order (api.ToolPropertiesMap) while a tool's own parameters' properties are a plain map
// (templateProperties: sorted by `json` and by `range`). The functions are Ollama's: `json`, `currentDate`,
// `yesterdayDate`, `toTypeScriptType`. Input: a JSON list of requests {template, system, messages, tools, think,
// is_think_set} (ollama_server.go_data: the messages already collated, as Ollama's collate does); output: the JSON
// list of rendered prompts. Used by tests/data/test_templates_ollama.py where Go is installed.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
	"time"
)

type PropertyType []string

func (pt *PropertyType) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		*pt = []string{s}
		return nil
	}
	var a []string
	if err := json.Unmarshal(data, &a); err != nil {
		return err
	}
	*pt = a
	return nil
}

func (pt PropertyType) MarshalJSON() ([]byte, error) {
	if len(pt) == 1 {
		return json.Marshal(pt[0])
	}
	return json.Marshal([]string(pt))
}

func (pt PropertyType) String() string {
	if len(pt) == 0 {
		return ""
	}
	if len(pt) == 1 {
		return pt[0]
	}
	return fmt.Sprintf("%v", []string(pt))
}

// PropertiesMap: a nested object's properties in the request's order (Ollama's api.ToolPropertiesMap, an
// ordered map behind a pointer: a template can neither range over it nor read its keys as fields).
type PropertiesMap struct {
	keys   []string
	values map[string]ToolProperty
}

func (m *PropertiesMap) UnmarshalJSON(data []byte) error {
	decoder := json.NewDecoder(bytes.NewReader(data))
	if _, err := decoder.Token(); err != nil { // the opening brace
		return err
	}
	m.values = map[string]ToolProperty{}
	for decoder.More() {
		key, err := decoder.Token()
		if err != nil {
			return err
		}
		var value ToolProperty
		if err := decoder.Decode(&value); err != nil {
			return err
		}
		name := key.(string)
		if _, seen := m.values[name]; !seen {
			m.keys = append(m.keys, name)
		}
		m.values[name] = value
	}
	return nil
}

func (m PropertiesMap) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, key := range m.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(key)
		value, err := json.Marshal(m.values[key])
		if err != nil {
			return nil, err
		}
		b.Write(name)
		b.WriteByte(':')
		b.Write(value)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

type ToolProperty struct {
	AnyOf       []ToolProperty `json:"anyOf,omitempty"`
	Type        PropertyType   `json:"type,omitempty"`
	Items       any            `json:"items,omitempty"`
	Description string         `json:"description,omitempty"`
	Enum        []any          `json:"enum,omitempty"`
	Properties  *PropertiesMap `json:"properties,omitempty"`
	Required    []string       `json:"required,omitempty"`
}

// toTypeScriptType: Ollama's ToolProperty.ToTypeScriptType
func (tp ToolProperty) toTypeScriptType() string {
	if len(tp.AnyOf) > 0 {
		var types []string
		for _, anyOf := range tp.AnyOf {
			types = append(types, anyOf.toTypeScriptType())
		}
		return strings.Join(types, " | ")
	}
	if len(tp.Type) == 0 {
		return "any"
	}
	var types []string
	for _, t := range tp.Type {
		switch t {
		case "string", "boolean", "null":
			types = append(types, t)
		case "number", "integer":
			types = append(types, "number")
		case "array":
			types = append(types, "any[]")
		case "object":
			types = append(types, "Record<string, any>")
		default:
			types = append(types, "any")
		}
	}
	return strings.Join(types, " | ")
}

type templateProperties map[string]ToolProperty

func (t templateProperties) String() string {
	if t == nil {
		return "{}"
	}
	b, _ := json.Marshal(t)
	return string(b)
}

type templateToolFunctionParameters struct {
	Type       string             `json:"type"`
	Defs       any                `json:"$defs,omitempty"`
	Items      any                `json:"items,omitempty"`
	Required   []string           `json:"required,omitempty"`
	Properties templateProperties `json:"properties"`
}

type templateToolFunction struct {
	Name        string                         `json:"name"`
	Description string                         `json:"description"`
	Parameters  templateToolFunctionParameters `json:"parameters"`
}

type templateTool struct {
	Type     string               `json:"type"`
	Items    any                  `json:"items,omitempty"`
	Function templateToolFunction `json:"function"`
}

func (t templateTool) String() string {
	b, _ := json.Marshal(t)
	return string(b)
}

type templateTools []templateTool

func (t templateTools) String() string {
	b, _ := json.Marshal(t)
	return string(b)
}

type templateArgs map[string]any

func (t templateArgs) String() string {
	if t == nil {
		return "{}"
	}
	b, _ := json.Marshal(t)
	return string(b)
}

type templateToolCallFunction struct {
	Index     int
	Name      string
	Arguments templateArgs
}

type templateToolCall struct {
	ID       string
	Function templateToolCallFunction
}

type templateMessage struct {
	Role       string
	Content    string
	Thinking   string
	Images     []string
	ToolCalls  []templateToolCall
	ToolName   string
	ToolCallID string
}

type requestCall struct {
	ID       string `json:"id"`
	Function struct {
		Index     int            `json:"index"`
		Name      string         `json:"name"`
		Arguments map[string]any `json:"arguments"`
	} `json:"function"`
}

type requestMessage struct {
	Role       string        `json:"role"`
	Content    string        `json:"content"`
	Thinking   string        `json:"thinking"`
	ToolCalls  []requestCall `json:"tool_calls"`
	ToolName   string        `json:"tool_name"`
	ToolCallID string        `json:"tool_call_id"`
}

type request struct {
	Template   string           `json:"template"`
	System     string           `json:"system"`
	Messages   []requestMessage `json:"messages"`
	Tools      templateTools    `json:"tools"`
	Think      bool             `json:"think"`
	IsThinkSet bool             `json:"is_think_set"`
}

var funcs = template.FuncMap{
	"json": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	},
	"currentDate": func(args ...string) string {
		return time.Now().Format("2006-01-02")
	},
	"yesterdayDate": func(args ...string) string {
		return time.Now().AddDate(0, 0, -1).Format("2006-01-02")
	},
	"toTypeScriptType": func(v any) string {
		if p, ok := v.(ToolProperty); ok {
			return p.toTypeScriptType()
		}
		if p, ok := v.(*ToolProperty); ok && p != nil {
			return p.toTypeScriptType()
		}
		return "any"
	},
}

func render(r request) (string, error) {
	tmpl, err := template.New("").Option("missingkey=zero").Funcs(funcs).Parse(r.Template)
	if err != nil {
		return "", err
	}
	messages := make([]*templateMessage, len(r.Messages))
	for i, m := range r.Messages {
		var calls []templateToolCall
		for _, c := range m.ToolCalls {
			calls = append(calls, templateToolCall{ID: c.ID, Function: templateToolCallFunction{
				Index: c.Function.Index, Name: c.Function.Name, Arguments: templateArgs(c.Function.Arguments)}})
		}
		messages[i] = &templateMessage{Role: m.Role, Content: m.Content, Thinking: m.Thinking, ToolCalls: calls,
			ToolName: m.ToolName, ToolCallID: m.ToolCallID}
	}
	var tools templateTools // nil without tools, as Ollama's convertToolsForTemplate gives
	if len(r.Tools) > 0 {
		tools = r.Tools
	}
	var b bytes.Buffer
	err = tmpl.Execute(&b, map[string]any{
		"System": r.System, "Messages": messages, "Tools": tools, "Response": "",
		"Think": r.Think, "ThinkLevel": "", "IsThinkSet": r.IsThinkSet,
	})
	return b.String(), err
}

func main() {
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	var requests []request
	if err := json.Unmarshal(data, &requests); err != nil {
		panic(err)
	}
	out := make([]string, len(requests))
	for i, r := range requests {
		if out[i], err = render(r); err != nil {
			fmt.Fprintf(os.Stderr, "request %d: %v\n", i, err)
			os.Exit(1)
		}
	}
	encoded, _ := json.Marshal(out)
	os.Stdout.Write(encoded)
}
