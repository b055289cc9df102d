package cli

import (
	"flag"
	"maps"

	"github.com/hashicorp/consul/api"
)

// `services` is Consul's: register and deregister services with the local
// agent, from definition files (servicedef.go) or flags.

var servicesCommand = &command{name: "services", synopsis: "Interact with services",
	subs: []*command{servicesRegisterCommand, servicesDeregisterCommand}}

var servicesRegisterCommand = &command{name: "register", synopsis: "Register services with the local agent",
	help: "beacon services register [options] [FILE...]", http: true,
	flags: func(fs *flag.FlagSet) {
		fs.String("id", "", "ID of the service to register for arg-based registration. If this isn't set, it will "+
			"default to the -name value.")
		fs.String("name", "", "Name of the service to register for arg-based registration.")
		fs.String("address", "", "Address of the service to register for arg-based registration.")
		fs.Int("port", 0, "Port of the service to register for arg-based registration.")
		fs.Var(new(metaFlag), "meta", "Metadata to set on the service, formatted as key=value. This flag may be "+
			"specified multiple times to set multiple meta fields.")
		fs.Var(new(stringList), "tag", "Tag to add to the service. This flag can be specified multiple times to set "+
			"multiple tags.")
		fs.Var(new(metaFlag), "tagged-address", "Tagged address to set on the service, formatted as key=value. "+
			"This flag may be specified multiple times to set multiple addresses.")
		fs.String("kind", "", "The services 'kind'")
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		fromFlags := &api.AgentServiceRegistration{
			Kind: api.ServiceKind(flagString(fs, "kind")), ID: flagString(fs, "id"), Name: flagString(fs, "name"),
			Address: flagString(fs, "address"), Port: flagOf[int](fs, "port"), Tags: flagOf[[]string](fs, "tag"),
			Meta: flagOf[map[string]string](fs, "meta"),
		}
		if tagged := flagOf[map[string]string](fs, "tagged-address"); len(tagged) > 0 {
			fromFlags.TaggedAddresses = map[string]api.ServiceAddress{}
			for k, v := range tagged {
				addr, err := api.ParseServiceAddr(v)
				if err != nil {
					return e.fail("Invalid Tagged Address: %v", err)
				}
				fromFlags.TaggedAddresses[k] = addr
			}
		}
		switch {
		case len(args) == 0 && fromFlags.Name == "":
			return e.fail("Service registration requires at least one argument or flags.")
		case len(args) > 0 && fromFlags.Name != "":
			return e.fail("Service registration requires arguments or -id, not both.")
		}
		svcs := []*api.AgentServiceRegistration{fromFlags}
		if len(args) > 0 {
			var err error
			if svcs, err = servicesFromFiles(args); err != nil {
				return e.fail("Error: %v", err)
			}
			for _, svc := range svcs {
				fillFromFlags(svc, fromFlags)
			}
		}
		for _, svc := range svcs {
			if err := e.client.Agent().ServiceRegister(svc); err != nil {
				return e.fail("Error registering service %q: %v", svc.Name, err)
			}
			e.info("Registered service: %s", svc.Name)
		}
		return exitOK
	},
}

// fillFromFlags completes a service from a file with the flags given, as
// Consul does: a flag sets what the file left empty; -meta, -tagged-address
// and -tag add to the file's.
func fillFromFlags(svc, flags *api.AgentServiceRegistration) {
	if svc.ID == "" {
		svc.ID = flags.ID
	}
	if svc.Address == "" {
		svc.Address = flags.Address
	}
	if svc.Port == 0 {
		svc.Port = flags.Port
	}
	if svc.Kind == "" {
		svc.Kind = flags.Kind
	}
	if len(flags.Meta) > 0 {
		if svc.Meta == nil {
			svc.Meta = map[string]string{}
		}
		maps.Copy(svc.Meta, flags.Meta)
	}
	if len(flags.TaggedAddresses) > 0 {
		if svc.TaggedAddresses == nil {
			svc.TaggedAddresses = map[string]api.ServiceAddress{}
		}
		maps.Copy(svc.TaggedAddresses, flags.TaggedAddresses)
	}
	svc.Tags = append(svc.Tags, flags.Tags...)
}

var servicesDeregisterCommand = &command{name: "deregister", synopsis: "Deregister services with the local agent",
	help: "beacon services deregister [options] [FILE...]", http: true,
	flags: func(fs *flag.FlagSet) {
		fs.String("id", "", "ID to delete. This must not be set if arguments are given.")
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		id := flagString(fs, "id")
		switch {
		case len(args) == 0 && id == "":
			return e.fail("Service deregistration requires at least one argument or -id.")
		case len(args) > 0 && id != "":
			return e.fail("Service deregistration requires arguments or -id, not both.")
		}
		svcs := []*api.AgentServiceRegistration{{ID: id}}
		if len(args) > 0 {
			var err error
			if svcs, err = servicesFromFiles(args); err != nil {
				return e.fail("Error: %v", err)
			}
		}
		for _, svc := range svcs {
			id := svc.ID
			if id == "" {
				id = svc.Name // registered without an ID, the service's ID is its name
			}
			if id == "" {
				continue
			}
			if err := e.client.Agent().ServiceDeregister(id); err != nil {
				return e.fail("Error deregistering service %q: %v", id, err)
			}
			e.info("Deregistered service: %s", id)
		}
		return exitOK
	},
}
