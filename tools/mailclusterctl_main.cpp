// mailclusterctl: the operator's tool. See tools/ctl.hpp.
#include "tools/ctl.hpp"

int main(int argc, char** argv) {
  return mc::run_ctl(argc, argv);
}
