// A shared library that is not an etl-host plugin: it exports no descriptor.
extern "C" __attribute__((visibility("default"))) int just_a_function() { return 42; }
