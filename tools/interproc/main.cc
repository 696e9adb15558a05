// interproc: lists and manages the named objects of the interproc library.
// See README.md in this directory.

#include <iostream>

#include "command.h"

int main(int argc, char** argv) { return interproc::cli::RunCli(argc, argv, std::cout, std::cerr); }
