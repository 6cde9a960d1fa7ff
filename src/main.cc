#include <cstdio>

int main() {
  std::puts("gatehouse " GATEHOUSE_VERSION);
  return 0;
}
