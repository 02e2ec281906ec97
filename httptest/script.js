"use strict";

function greet(name) {
  return "hello, " + name;
}

document.title = greet("oserver");
