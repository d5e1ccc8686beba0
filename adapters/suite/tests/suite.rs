//! The behaviour suite, instantiated per adapter.

macro_rules! suite {
    ($module:ident, $api:ty) => {
        mod $module {
            use authpi_idp_adapter_suite::cases;
            type A = $api;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn every_method() {
                cases::every_method::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn discovery() {
                cases::discovery::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn single_flight_refresh() {
                cases::single_flight_refresh::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn single_flight_jwks() {
                cases::single_flight_jwks::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn size_cap() {
                cases::size_cap::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn deadline() {
                cases::deadline::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn redirects_not_followed() {
                cases::redirects_not_followed::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn provider_errors() {
                cases::provider_errors::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn rate_limited() {
                cases::rate_limited::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn user_agent() {
                cases::user_agent::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn callback_mixing() {
                cases::callback_mixing::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn flight_key_covers_resources() {
                cases::flight_key_covers_resources::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn refresh_error_before_the_token_request() {
                cases::refresh_error_before_the_token_request::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn revoke_purges_the_grace_period() {
                cases::revoke_purges_the_grace_period::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn panicking_on_refresh_still_publishes() {
                cases::panicking_on_refresh_still_publishes::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn size_cap_without_content_length() {
                cases::size_cap_without_content_length::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn deadline_covers_a_trickled_body() {
                cases::deadline_covers_a_trickled_body::<A>().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn post_redirects_not_followed() {
                cases::post_redirects_not_followed::<A>().await;
            }
        }
    };
}

suite!(reqwest, authpi_idp_reqwest::IdpClient);
suite!(hyper, authpi_idp_hyper::IdpClient);
suite!(ureq, authpi_idp_ureq::IdpClientSync);
