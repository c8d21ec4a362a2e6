package server

import (
	"net"
	"net/rpc"
	"strings"
	"testing"
	"time"

	msgpackrpc "github.com/hashicorp/net-rpc-msgpackrpc/v2"
	"github.com/hashicorp/yamux"
	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/server/pool"
	"github.com/drover-sh/drover/structs"
)

// One stream carries call after call on one goroutine: a call to an
// unknown method is answered and the stream goes on, calls pipelined on
// one stream are all answered, and a stream closed by the client ends.
func TestRPC_StreamServesCallsInOrder(t *testing.T) {
	s := testServer(t, nil)
	conn, err := net.Dial("tcp", s.config.RPCAddr.String())
	require.NoError(t, err)
	_, err = conn.Write([]byte{pool.ConnMultiplex})
	require.NoError(t, err)
	sess, err := yamux.Client(conn, nil)
	require.NoError(t, err)
	defer sess.Close()
	stream, err := sess.Open()
	require.NoError(t, err)
	client := rpc.NewClientWithCodec(msgpackrpc.NewCodecFromHandle(true, true, stream, structs.MsgpackHandle()))

	var leader structs.LeaderResponse
	err = client.Call("Status.Nope", &structs.GenericRequest{}, &leader)
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "can't find method"), err.Error())
	require.NoError(t, client.Call("Status.Leader", &structs.GenericRequest{}, &leader), "the stream outlives a bad call")
	require.NotEmpty(t, leader.Leader)

	// A blocking query and a ping pipelined behind it: both answered.
	list := &structs.EvalListRequest{}
	list.MinQueryIndex = 1 << 40
	list.MaxQueryTime = 200 * time.Millisecond
	var evals structs.EvalListResponse
	blocking := client.Go("Eval.List", list, &evals, nil)
	ping := client.Go("Status.Ping", &structs.GenericRequest{}, &struct{}{}, nil)
	for _, call := range []*rpc.Call{blocking, ping} {
		select {
		case <-call.Done:
			require.NoError(t, call.Error, call.ServiceMethod)
		case <-time.After(5 * time.Second):
			t.Fatalf("%s not answered", call.ServiceMethod)
		}
	}

	// The stream, not the client: the msgpack codec's Close races its
	// reader (see pool.clientCodec).
	require.NoError(t, stream.Close())
	require.Eventually(t, func() bool { return sess.NumStreams() == 0 },
		5*time.Second, 10*time.Millisecond, "the server ends the stream the client closed")
}
