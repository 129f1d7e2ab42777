//! Who a send goes to: one candidate, a list, or everyone with an open
//! application matching a position, a category and a status. Checks each
//! name against the config; the candidates themselves are found by the
//! store. Pure.

use crate::config::Config;
use crate::store::candidates::STATUSES;

/// The recipients of a send, as asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audience {
    /// These candidates, in this order.
    pub candidates: Vec<i64>,
    /// Or: candidates with an application to this position ...
    pub position: Option<String>,
    /// ... or to a position of this category ...
    pub category: Option<String>,
    /// ... in this status.
    pub status: Option<String>,
}

/// An audience resolved against the config: the candidates named, or the
/// store query to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Candidates(Vec<i64>),
    /// Candidates with applications to these positions (`None`: any) in
    /// this status (`None`: any).
    Applications {
        positions: Option<Vec<String>>,
        status: Option<String>,
    },
}

/// Checks an audience against the config and says how to find it.
pub fn select(audience: &Audience, config: &Config) -> Result<Selection, String> {
    if !audience.candidates.is_empty() {
        return Ok(Selection::Candidates(audience.candidates.clone()));
    }
    if audience.position.is_none() && audience.category.is_none() && audience.status.is_none() {
        return Err("name the candidates, or a position, category or status".into());
    }
    let mut positions: Option<Vec<String>> = None;
    if let Some(p) = &audience.position {
        if !config.positions.iter().any(|x| &x.id == p) {
            return Err(format!("no position {p:?} in the config"));
        }
        positions = Some(vec![p.clone()]);
    }
    if let Some(k) = &audience.category {
        if !config.categories.iter().any(|x| &x.id == k) {
            return Err(format!("no category {k:?} in the config"));
        }
        let in_category: Vec<String> = config
            .positions
            .iter()
            .filter(|p| &p.category == k)
            .map(|p| p.id.clone())
            .collect();
        positions = Some(match positions {
            Some(p) => p.into_iter().filter(|x| in_category.contains(x)).collect(),
            None => in_category,
        });
    }
    if let Some(s) = &audience.status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(format!(
            "unknown status {s:?} (one of {})",
            STATUSES.join(", ")
        ));
    }
    Ok(Selection::Applications {
        positions,
        status: audience.status.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        crate::config::parse(
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/matching/world.toml"
            )),
            std::path::Path::new("world.toml"),
        )
        .expect("world config")
    }

    #[test]
    fn an_audience_is_checked_against_the_config() {
        let c = config();
        let p = &c.positions[0];
        let of = |a: Audience| select(&a, &c);
        assert_eq!(
            of(Audience {
                candidates: vec![3, 1],
                position: Some("ignored".into()),
                ..Default::default()
            }),
            Ok(Selection::Candidates(vec![3, 1]))
        );
        assert!(of(Audience::default()).is_err());
        assert_eq!(
            of(Audience {
                position: Some("nope".into()),
                ..Default::default()
            }),
            Err("no position \"nope\" in the config".into())
        );
        assert!(
            of(Audience {
                status: Some("sleeping".into()),
                ..Default::default()
            })
            .is_err_and(|e| e.contains("unknown status"))
        );
        // A position and its own category: that position.
        assert_eq!(
            of(Audience {
                position: Some(p.id.clone()),
                category: Some(p.category.clone()),
                status: Some("new".into()),
                ..Default::default()
            }),
            Ok(Selection::Applications {
                positions: Some(vec![p.id.clone()]),
                status: Some("new".into())
            })
        );
        // A category: all its positions.
        let in_category: Vec<String> = c
            .positions
            .iter()
            .filter(|x| x.category == p.category)
            .map(|x| x.id.clone())
            .collect();
        assert_eq!(
            of(Audience {
                category: Some(p.category.clone()),
                ..Default::default()
            }),
            Ok(Selection::Applications {
                positions: Some(in_category),
                status: None
            })
        );
    }
}
