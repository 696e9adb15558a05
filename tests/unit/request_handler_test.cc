// A handler that throws fails only its own call: the client gets Internal, and
// the server (on one thread or several) carries on with the next call.

#include <gtest/gtest.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "interproc/request_server.h"
#include "test_support.h"

namespace interproc {
namespace {

using namespace std::chrono_literals;

Result<std::size_t> ThrowOnBoom(const CallerInfo&, std::span<const std::byte> request,
                                std::span<std::byte> response) {
  const std::string text(reinterpret_cast<const char*>(request.data()), request.size());
  if (text == "boom") throw std::runtime_error("boom");
  std::memcpy(response.data(), request.data(), request.size());
  return request.size();
}

void ExpectThrowingCallFailsAndServerGoesOn(unsigned threads) {
  const Name n = testing::UniqueName("rh");
  auto server = RequestServer::Create(n);
  ASSERT_TRUE(server) << server.error();
  std::thread serving([&] { ASSERT_TRUE(server->Serve(ThrowOnBoom, threads)); });
  auto client = RequestClient::Open(n);
  ASSERT_TRUE(client) << client.error();
  std::vector<std::byte> response;
  for (int round = 0; round < 3; ++round) {
    auto boom = client->Call(testing::AsBytes("boom"), response, testing::DeadlineIn(10s));
    ASSERT_FALSE(boom);
    EXPECT_EQ(boom.error().code(), Errc::kInternal) << boom.error();
    auto echo = client->Call(testing::AsBytes("echo"), response, testing::DeadlineIn(10s));
    ASSERT_TRUE(echo) << echo.error();
    EXPECT_EQ(testing::Text(response), "echo");
  }
  server->Stop();
  serving.join();
}

TEST(RequestHandler, AThrowingHandlerFailsItsCallOnOneThread) {
  ExpectThrowingCallFailsAndServerGoesOn(1);
}

TEST(RequestHandler, AThrowingHandlerFailsItsCallOnSeveralThreads) {
  ExpectThrowingCallFailsAndServerGoesOn(3);
}

}  // namespace
}  // namespace interproc
