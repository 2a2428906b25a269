package domain

import (
	"fmt"
	"strings"
)

// Permission is one right that exists for a kind of object, with what it
// lets its holder do.
type Permission struct {
	Name        string
	Description string
}

// PermissionKinds are the kinds of object that carry rights: project and
// circle memberships, and grants to circles on experiments, libraries and
// realizations.
var PermissionKinds = []string{"project", "circle", "experiment", "library", "realization"}

// permissionOrder lists each kind's rights in the order DETER gives them.
var permissionOrder = map[string][]Right{
	"project":     {AddUser, RemoveUser, CreateCircle, CreateExperiment, CreateLibrary, RealizeExperiment},
	"circle":      {AddUser, RemoveUser, RealizeExperiment},
	"experiment":  {Read, Modify, Realize, ModifyAccess},
	"library":     {Read, AddExperiment, RemoveExperiment, ModifyAccess},
	"realization": {Read, Modify, Release, ModifyAccess},
}

// permissionText says what each right lets its holder do, by kind:
// the text applies to that kind only.
var permissionText = map[string]map[Right]string{
	"project": {
		AddUser:           "invite users to the project and answer requests to join it",
		RemoveUser:        "remove members from the project",
		CreateCircle:      "create circles named project:name",
		CreateExperiment:  "create experiments named project:name",
		CreateLibrary:     "create libraries named project:name",
		RealizeExperiment: "realize experiments under the project",
	},
	"circle": {
		AddUser:           "invite users to the circle and answer requests to join it",
		RemoveUser:        "remove members from the circle",
		RealizeExperiment: "realize experiments shared with the circle",
	},
	"experiment": {
		Read:         "read the experiment and its aspects, export it",
		Modify:       "add, change and remove aspects, set the profile",
		Realize:      "realize the experiment (with realize_experiment in a project)",
		ModifyAccess: "grant and revoke circles' rights on the experiment",
	},
	"library": {
		Read:             "read the library and the experiments in it one may read",
		AddExperiment:    "add experiments (that one may read) to the library",
		RemoveExperiment: "remove experiments from the library",
		ModifyAccess:     "grant and revoke circles' rights on the library",
	},
	"realization": {
		Read:         "read the realization and its bindings",
		Modify:       "renew the lease and change the bindings",
		Release:      "release the realization",
		ModifyAccess: "grant and revoke circles' rights on the realization",
	},
}

// ValidPermissions lists the rights that exist for kind (DETER's
// getValidPermissions); a test holds them equal to the vocabularies that
// ParseRights checks.
func ValidPermissions(field, kind string) ([]Permission, error) {
	order, ok := permissionOrder[kind]
	if !ok {
		return nil, Invalid(field, field+".unknown", fmt.Sprintf("unknown kind %s; the kinds are %s", quote(kind), strings.Join(PermissionKinds, ", ")))
	}
	out := make([]Permission, 0, len(order))
	for _, r := range order {
		out = append(out, Permission{Name: string(r), Description: permissionText[kind][r]})
	}
	return out, nil
}
