// Renders Modelfile TEMPLATEs with Go's own text/template on Ollama's template data (a test helper).
//
// The structs mirror the template types of Ollama's template/template.go (templateMessage, templateToolCall,
// templateTool, ...) and its api.ToolProperty, with the same JSON tags; `json` is Ollama's template function.
// Input: a JSON list of requests {template, system, messages, tools, think, is_think_set} (ollama_server.go_data);
// output: the JSON list of rendered prompts. Used by tests/data/test_templates_ollama.py where Go is installed.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"text/template"
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

type ToolProperty struct {
	AnyOf       []ToolProperty          `json:"anyOf,omitempty"`
	Type        PropertyType            `json:"type,omitempty"`
	Items       any                     `json:"items,omitempty"`
	Description string                  `json:"description,omitempty"`
	Enum        []any                   `json:"enum,omitempty"`
	Properties  map[string]ToolProperty `json:"properties,omitempty"`
}

type templateToolFunctionParameters struct {
	Type       string                  `json:"type"`
	Defs       any                     `json:"$defs,omitempty"`
	Items      any                     `json:"items,omitempty"`
	Required   []string                `json:"required,omitempty"`
	Properties map[string]ToolProperty `json:"properties"`
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

type templateToolCallFunction struct {
	Index     int
	Name      string
	Arguments map[string]any
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
	Tools      []templateTool   `json:"tools"`
	Think      bool             `json:"think"`
	IsThinkSet bool             `json:"is_think_set"`
}

var funcs = template.FuncMap{
	"json": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
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
		for j, c := range m.ToolCalls {
			calls = append(calls, templateToolCall{ID: c.ID, Function: templateToolCallFunction{
				Index: j, Name: c.Function.Name, Arguments: c.Function.Arguments}})
		}
		messages[i] = &templateMessage{Role: m.Role, Content: m.Content, Thinking: m.Thinking, ToolCalls: calls,
			ToolName: m.ToolName, ToolCallID: m.ToolCallID}
	}
	var tools []templateTool
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
