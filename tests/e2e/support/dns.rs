//! A DNS server on 127.0.0.1 that the test controls: TXT records from a
//! table (SPF, DKIM keys, DMARC policies), NXDOMAIN for every other name,
//! no data for other types of a known name. Enough for SPF, DKIM and DMARC
//! checks without the internet. It records the names it was asked.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Dns {
    pub addr: SocketAddr,
    asked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

const TXT: u16 = 16;

impl Dns {
    /// Serves `records` (name, TXT text) until dropped.
    pub fn start(records: &[(&str, &str)]) -> Dns {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let addr = socket.local_addr().expect("local addr");
        let mut table: HashMap<String, Vec<String>> = HashMap::new();
        for (name, text) in records {
            table
                .entry(name.trim_end_matches('.').to_ascii_lowercase())
                .or_default()
                .push(text.to_string());
        }
        let asked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (asked2, stop2) = (asked.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !stop2.load(Ordering::Relaxed) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if let Some((name, reply)) = answer(&buf[..n], &table) {
                    asked2.lock().unwrap().push(name);
                    let _ = socket.send_to(&reply, peer);
                }
            }
        });
        Dns { addr, asked, stop }
    }

    /// Every name asked so far, lowercased.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

/// The reply to one query, and the name it asked.
fn answer(query: &[u8], table: &HashMap<String, Vec<String>>) -> Option<(String, Vec<u8>)> {
    if query.len() < 12 {
        return None;
    }
    let mut labels = Vec::new();
    let mut at = 12;
    loop {
        let len = *query.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let question_end = at + 4;
    let name = labels.join(".");
    let known = table.get(&name);
    let answers: Vec<&String> = match known {
        Some(texts) if qtype == TXT => texts.iter().collect(),
        _ => Vec::new(),
    };
    let mut reply = Vec::with_capacity(512);
    reply.extend_from_slice(&query[0..2]);
    reply.push(0x84 | (query[2] & 0x01)); // QR, AA, RD as asked
    reply.push(if known.is_some() { 0 } else { 3 }); // NOERROR or NXDOMAIN
    reply.extend_from_slice(&1u16.to_be_bytes());
    reply.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0]);
    reply.extend_from_slice(query.get(12..question_end)?);
    for text in answers {
        let mut rdata = Vec::new();
        for chunk in text.as_bytes().chunks(255) {
            rdata.push(chunk.len() as u8);
            rdata.extend_from_slice(chunk);
        }
        reply.extend_from_slice(&[0xC0, 0x0C]);
        reply.extend_from_slice(&TXT.to_be_bytes());
        reply.extend_from_slice(&1u16.to_be_bytes());
        reply.extend_from_slice(&60u32.to_be_bytes());
        reply.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        reply.extend_from_slice(&rdata);
    }
    Some((name, reply))
}
