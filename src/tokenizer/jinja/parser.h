// Tokens → syntax tree, following Jinja's grammar and operator precedence (lowest first):
//   x if c else y  |  or  |  and  |  not  |  == != < <= > >= in, not in  |  + -  |  ~
//   |  * / // %  |  **  |  unary - +  |  primary with . [] () postfixes, | filters, is tests
// Everything the interpreter cannot do is refused here, at compile time: unknown tags, filters,
// tests, functions and methods, macros/includes/call blocks, and nesting beyond the limit.
#pragma once
#include <vector>

#include "ast.h"
#include "lexer.h"

namespace nanoflow::jinja {

// Names the interpreter implements; the parser checks templates against them.
bool is_known_filter(const std::string& name);
bool is_known_test(const std::string& name);
bool is_known_global(const std::string& name);  // functions: raise_exception, namespace, range...
bool is_known_method(const std::string& name);  // str/dict methods and loop.cycle

Body parse_template(std::vector<Token> tokens, int max_nesting);

}  // namespace nanoflow::jinja
