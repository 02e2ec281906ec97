//! actix-web 4: GET /plaintext and /json on THREADS workers. actix-web
//! writes `Date` itself; `Server` is set per response.

use actix_web::http::header::{CONTENT_TYPE, SERVER};
use actix_web::{get, App, HttpResponse, HttpServer};
use oserver_framework_bench::{args, json_body, MESSAGE};

#[get("/plaintext")]
async fn plaintext() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((SERVER, "actix"))
        .insert_header((CONTENT_TYPE, "text/plain"))
        .body(MESSAGE)
}

#[get("/json")]
async fn json() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((SERVER, "actix"))
        .insert_header((CONTENT_TYPE, "application/json"))
        .body(json_body())
}

fn main() -> std::io::Result<()> {
    let (addr, threads) = args("actix");
    actix_web::rt::System::new().block_on(
        HttpServer::new(|| App::new().service(plaintext).service(json))
            .workers(threads)
            .backlog(1024)
            .bind(addr)?
            .run(),
    )
}
