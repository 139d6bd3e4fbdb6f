fn main() {
    let _ = lokal::model::Timestamp::now();
}
