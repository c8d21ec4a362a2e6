package structs

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestServiceRegistration_Validate(t *testing.T) {
	valid := func() *ServiceRegistration {
		return &ServiceRegistration{
			ID: ServiceRegistrationID("a-1", "web", "http"), ServiceName: "web", Namespace: "default",
			NodeID: "n-1", AllocID: "a-1", Address: "10.0.0.2", Port: 8080, HostPort: 23456,
		}
	}
	var v ValidationError
	valid().Validate(&v, "services[0]")
	require.NoError(t, v.ErrOrNil())

	cases := []struct {
		name  string
		edit  func(*ServiceRegistration)
		field string
		msg   string
	}{
		{"name", func(s *ServiceRegistration) { s.ServiceName = "Web" }, "services[0].service_name", "must be a DNS label"},
		{"id of another alloc", func(s *ServiceRegistration) { s.ID = "a-2/web/http" }, "services[0].id", "must be <alloc_id>/<service_name>/<port label>"},
		{"id without label", func(s *ServiceRegistration) { s.ID = "a-1/web/" }, "services[0].id", "must be"},
		{"no alloc", func(s *ServiceRegistration) { s.AllocID = "" }, "services[0].alloc_id", "required"},
		{"no node", func(s *ServiceRegistration) { s.NodeID = "" }, "services[0].node_id", "required"},
		{"no address", func(s *ServiceRegistration) { s.Address = "" }, "services[0].address", "required"},
		{"port 0", func(s *ServiceRegistration) { s.Port = 0 }, "services[0].port", "must be between 1 and 65535, got 0"},
		{"port too big", func(s *ServiceRegistration) { s.Port = 70000 }, "services[0].port", "got 70000"},
		{"host port", func(s *ServiceRegistration) { s.HostPort = -1 }, "services[0].host_port", "got -1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := valid()
			tc.edit(s)
			var v ValidationError
			s.Validate(&v, "services[0]")
			require.NotEmpty(t, v.Errors)
			require.Equal(t, tc.field, v.Errors[0].Field)
			require.Contains(t, v.Errors[0].Message, tc.msg)
		})
	}
	var nilErr ValidationError
	(*ServiceRegistration)(nil).Validate(&nilErr, "services[1]")
	require.Equal(t, "services[1]", nilErr.Errors[0].Field)
}
