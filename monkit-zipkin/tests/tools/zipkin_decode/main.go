// Decodes a Zipkin v2 JSON body (stdin) with Zipkin's own Go model and prints one line per
// span: traceId id parentId kind name. Exit 1 on a decoding error.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/openzipkin/zipkin-go/model"
)

func main() {
	body, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var spans []model.SpanModel
	if err := json.Unmarshal(body, &spans); err != nil {
		fmt.Fprintln(os.Stderr, "decode:", err)
		os.Exit(1)
	}
	for _, s := range spans {
		parent := "-"
		if s.ParentID != nil {
			parent = s.ParentID.String()
		}
		kind := string(s.Kind)
		if kind == "" {
			kind = "-"
		}
		service := "-"
		if s.LocalEndpoint != nil {
			service = s.LocalEndpoint.ServiceName
		}
		fmt.Printf("%s %s %s %s %d %s %s\n", s.TraceID.String(), s.ID.String(), parent, kind,
			s.Duration.Microseconds(), service, s.Name)
	}
}
