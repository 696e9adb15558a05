#include "test_support.h"

int main(int argc, char** argv) { return interproc::testing::TestMain(argc, argv); }
