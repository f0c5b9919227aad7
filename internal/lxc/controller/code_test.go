package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/virtd/virtd/virt"
)

// TestErrorCodes: an error's kind crosses the controller's channel as a
// number, and the driver gets the kind and the message back, the kind
// named once.
func TestErrorCodes(t *testing.T) {
	for _, tt := range []struct {
		err  error
		code Code
		kind error
	}{
		{invalid(errors.New("root filesystem /x is not a directory")), CodeInvalid, virt.ErrInvalidArgument},
		{fmt.Errorf("the container is paused: %w", virt.ErrFailedPrecondition), CodePrecondition, virt.ErrFailedPrecondition},
		{errors.New("clone: operation not permitted"), CodeInternal, virt.ErrInternal},
		{fmt.Errorf("gone: %w", virt.ErrNotFound), CodeInternal, virt.ErrInternal},
	} {
		line, err := json.Marshal(errorResponse(tt.err))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(line), fmt.Sprintf(`"code":%d`, tt.code)) {
			t.Errorf("%v sent as %s, want code %d", tt.err, line, tt.code)
		}
		var resp Response
		if err := json.Unmarshal(line, &resp); err != nil {
			t.Fatal(err)
		}
		got := (&RemoteError{Code: resp.Code, Msg: resp.Error}).Err()
		if virt.KindOf(got) != tt.kind || got.Error() != virt.Message(tt.err)+": "+tt.kind.Error() {
			t.Errorf("%v came back as %q (kind %v)", tt.err, got, virt.KindOf(got))
		}
	}
	if k := Code(99).Kind(); k != virt.ErrInternal {
		t.Errorf("unknown code: kind %v", k)
	}
}
