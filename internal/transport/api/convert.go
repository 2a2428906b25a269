package api

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

var userStates = map[domain.UserState]trellisv1.UserState{
	domain.UserPendingEmail: trellisv1.UserState_USER_STATE_PENDING_EMAIL,
	domain.UserActive:       trellisv1.UserState_USER_STATE_ACTIVE,
	domain.UserLocked:       trellisv1.UserState_USER_STATE_LOCKED,
	domain.UserDisabled:     trellisv1.UserState_USER_STATE_DISABLED,
}

func userStateFromProto(s trellisv1.UserState) string {
	for d, p := range userStates {
		if p == s {
			return string(d)
		}
	}
	return s.String()
}

func userToProto(u *domain.User) *trellisv1.User {
	return &trellisv1.User{
		Uid:           u.UID,
		Email:         u.Email,
		EmailVerified: u.EmailVerified,
		State:         userStates[u.State],
		Admin:         u.Admin,
		CreatedAt:     ts(u.CreatedAt),
		UpdatedAt:     ts(u.UpdatedAt),
	}
}

var accesses = map[domain.Access]trellisv1.AttributeAccess{
	domain.ReadOnly:  trellisv1.AttributeAccess_ATTRIBUTE_ACCESS_READ_ONLY,
	domain.ReadWrite: trellisv1.AttributeAccess_ATTRIBUTE_ACCESS_READ_WRITE,
	domain.WriteOnly: trellisv1.AttributeAccess_ATTRIBUTE_ACCESS_WRITE_ONLY,
	domain.NoAccess:  trellisv1.AttributeAccess_ATTRIBUTE_ACCESS_NO_ACCESS,
}

var dataTypes = map[domain.DataType]trellisv1.AttributeDataType{
	domain.TypeString: trellisv1.AttributeDataType_ATTRIBUTE_DATA_TYPE_STRING,
	domain.TypeInt:    trellisv1.AttributeDataType_ATTRIBUTE_DATA_TYPE_INT,
	domain.TypeFloat:  trellisv1.AttributeDataType_ATTRIBUTE_DATA_TYPE_FLOAT,
	domain.TypeOpaque: trellisv1.AttributeDataType_ATTRIBUTE_DATA_TYPE_OPAQUE,
	domain.TypeList:   trellisv1.AttributeDataType_ATTRIBUTE_DATA_TYPE_LIST,
}

func descriptionToProto(d *domain.ProfileDescription) []*trellisv1.AttributeDescription {
	var out []*trellisv1.AttributeDescription
	for _, a := range d.Attributes() {
		out = append(out, attributeToProto(a))
	}
	return out
}

func attributeToProto(a domain.Attribute) *trellisv1.AttributeDescription {
	return &trellisv1.AttributeDescription{
		Name:              a.Name,
		Description:       a.Description,
		Access:            accesses[a.Access],
		Optional:          a.Optional,
		DataType:          dataTypes[a.DataType],
		Format:            a.Format,
		FormatDescription: a.FormatDescription,
		LengthHint:        int32(a.LengthHint),
		OrderingHint:      int32(a.OrderingHint),
	}
}

func definitionToProto(a domain.Attribute) *trellisv1.AttributeDefinition {
	return &trellisv1.AttributeDefinition{Attribute: attributeToProto(a), MaxLength: int32(a.MaxLength), System: a.System}
}

var profileKinds = map[trellisv1.ProfileKind]string{
	trellisv1.ProfileKind_PROFILE_KIND_USER:       store.ProfileUser,
	trellisv1.ProfileKind_PROFILE_KIND_PROJECT:    store.ProfileProject,
	trellisv1.ProfileKind_PROFILE_KIND_CIRCLE:     store.ProfileCircle,
	trellisv1.ProfileKind_PROFILE_KIND_EXPERIMENT: store.ProfileExperiment,
	trellisv1.ProfileKind_PROFILE_KIND_LIBRARY:    store.ProfileLibrary,
}

// keyOf finds the key of v in m; unknown values give the zero key, which
// the service refuses with the field it names.
func keyOf[K comparable, V comparable](m map[K]V, v V) K {
	for k, x := range m {
		if x == v {
			return k
		}
	}
	var zero K
	return zero
}

func profileToProto(vs []domain.ProfileValue) []*trellisv1.ProfileAttribute {
	out := make([]*trellisv1.ProfileAttribute, 0, len(vs))
	for _, v := range vs {
		out = append(out, &trellisv1.ProfileAttribute{Name: v.Name, Value: v.Value, Access: accesses[v.Access]})
	}
	return out
}

func changesToProto(cs []domain.AttributeChange) []*trellisv1.AttributeChange {
	out := make([]*trellisv1.AttributeChange, 0, len(cs))
	for _, c := range cs {
		out = append(out, &trellisv1.AttributeChange{Name: c.Name, Changed: c.Changed, Rule: c.Rule, Reason: c.Reason})
	}
	return out
}

func auditToProto(e *domain.AuditEvent) *trellisv1.AuditEvent {
	return &trellisv1.AuditEvent{
		Id: e.ID, Time: ts(e.Time), Actor: e.Actor, OnBehalfOf: e.OnBehalfOf,
		Operation: e.Operation, Object: e.Object, Outcome: e.Outcome,
		RequestId: e.RequestID, Detail: e.Detail,
	}
}

func mailToProto(m *domain.Mail) *trellisv1.OutboxMessage {
	return &trellisv1.OutboxMessage{
		Id: m.ID, CreatedAt: ts(m.CreatedAt), To: m.To, Subject: m.Subject,
		Body: m.Body, SentAt: ts(m.SentAt), LastError: m.LastError,
	}
}
