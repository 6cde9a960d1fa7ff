// A gRPC echo server for the gRPC benchmark: answers every unary call, on any method, with the
// request message. It uses the generic (raw bytes) async API, so it needs no generated code,
// and one completion-queue thread, so the proxy in front of it is what gets measured.
//   grpc_echo PORT
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace {

// One call slot, recycled: wait for a call, read its message, write it back with OK.
class Call {
 public:
  Call(grpc::AsyncGenericService& svc, grpc::ServerCompletionQueue& cq) : svc_(svc), cq_(cq) {
    start();
  }

  void proceed(bool ok) {
    switch (state_) {
      case State::kWaiting:
        if (!ok) return;  // the server is shutting down
        state_ = State::kReading;
        stream_->Read(&msg_, this);
        break;
      case State::kReading:
        state_ = State::kFinishing;
        if (ok) {
          stream_->WriteAndFinish(msg_, grpc::WriteOptions(), grpc::Status::OK, this);
        } else {
          stream_->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no message"), this);
        }
        break;
      case State::kFinishing:
        start();
        break;
    }
  }

 private:
  enum class State { kWaiting, kReading, kFinishing };

  void start() {
    stream_.reset();  // it refers to the context
    ctx_ = std::make_unique<grpc::GenericServerContext>();
    stream_ = std::make_unique<grpc::GenericServerAsyncReaderWriter>(ctx_.get());
    msg_.Clear();
    state_ = State::kWaiting;
    svc_.RequestCall(ctx_.get(), stream_.get(), &cq_, &cq_, this);
  }

  grpc::AsyncGenericService& svc_;
  grpc::ServerCompletionQueue& cq_;
  std::unique_ptr<grpc::GenericServerContext> ctx_;
  std::unique_ptr<grpc::GenericServerAsyncReaderWriter> stream_;
  grpc::ByteBuffer msg_;
  State state_ = State::kWaiting;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: grpc_echo PORT\n");
    return 2;
  }
  grpc::AsyncGenericService service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(std::string("127.0.0.1:") + argv[1],
                           grpc::InsecureServerCredentials());
  builder.RegisterAsyncGenericService(&service);
  std::unique_ptr<grpc::ServerCompletionQueue> cq = builder.AddCompletionQueue();
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    std::fprintf(stderr, "grpc_echo: cannot listen on port %s\n", argv[1]);
    return 1;
  }
  std::vector<std::unique_ptr<Call>> calls;
  for (int i = 0; i < 512; ++i)
    calls.push_back(std::make_unique<Call>(service, *cq));
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok))
    static_cast<Call*>(tag)->proceed(ok);
  return 0;
}
